#include "sync/internal/wait_queue.h"

namespace fiberloop::internal {
namespace {

struct WaitTimer : TimerNode {
  FiberRecord* fiber = nullptr;
  bool expired = false;
};

}  // namespace

void WaitQueue::wait(const char* what) {
  FiberRecord& self = running_fiber_or_throw(what);
  fibers_.push_back(self);
  loop_of(self).park(kind_);
}

bool WaitQueue::wait_until(TimePoint deadline, const char* what) {
  FiberRecord& self = running_fiber_or_throw(what);
  LoopCore& loop = loop_of(self);
  WaitTimer timer;
  timer.fiber = &self;
  timer.fire = [](TimerNode* node) {
    auto& t = *static_cast<WaitTimer*>(node);
    if (!static_cast<FiberRecord::WaitHook&>(*t.fiber).linked()) return;  // already notified
    static_cast<FiberRecord::WaitHook&>(*t.fiber).unlink();
    t.expired = true;
    t.fiber->loop->wake(*t.fiber);
  };
  loop.add_timer(timer, deadline);
  fibers_.push_back(self);
  try {
    loop.park(kind_);
  } catch (...) {
    loop.remove_timer(timer);
    throw;
  }
  loop.remove_timer(timer);
  return !timer.expired;
}

void WaitQueue::wait_uninterruptible(const char* what) {
  FiberRecord& self = running_fiber_or_throw(what);
  LoopCore& loop = loop_of(self);
  // An interrupt unlinks us and makes us ready without a notification: queue
  // again (at the back: we were interrupted, not served) and keep waiting.
  do {
    fibers_.push_back(self);
  } while (!loop.park_masked(kind_));
}

FiberRecord* WaitQueue::notify_one() noexcept {
  if (fibers_.empty()) return nullptr;
  FiberRecord& f = fibers_.pop_front();
  loop_of(f).wake(f);
  return &f;
}

void WaitQueue::notify_all() noexcept {
  while (!fibers_.empty()) {
    FiberRecord& f = fibers_.pop_front();
    loop_of(f).wake(f);
  }
}

}  // namespace fiberloop::internal
