#include "sync/internal/waiters.h"

#include <stdexcept>
#include <string>

namespace fiberloop::internal {

void HomeLoop::adopt_or_throw(Scheduler* here, const char* what) {
  if (here != nullptr && (loop_ == nullptr || !scheduler_is_live(loop_))) {
    loop_ = here;
    return;
  }
  std::string message(what);
  message += here == nullptr ? ": called from a thread with no Loop"
                             : ": called from another Loop's thread";
  message +=
      ", but this primitive belongs to the loop of another thread (fiberloop's primitives work "
      "within one loop); hand the call to that loop with Loop::call_soon_threadsafe()";
  throw std::logic_error(message);
}

void WaitQueue::wait(const char* what) {
  FiberRecord& self = running_fiber_or_throw(what);
  fibers_.push_back(self);
  self.scheduler->park(kind_);
}

bool WaitQueue::wait_until(TimePoint deadline, const char* what) {
  FiberRecord& self = running_fiber_or_throw(what);
  fibers_.push_back(self);
  return self.scheduler->park_until(deadline, kind_);  // the deadline takes us out of the queue
}

void WaitQueue::wait_uninterruptible(const char* what) {
  FiberRecord& self = running_fiber_or_throw(what);
  // An interrupt unlinks us and makes us ready without a notification: queue
  // again (at the back: we were interrupted, not served) and keep waiting.
  do {
    fibers_.push_back(self);
  } while (!self.scheduler->park_uninterruptible(kind_));
}

FiberRecord* WaitQueue::notify_one() noexcept {
  if (fibers_.empty()) return nullptr;
  FiberRecord& f = fibers_.pop_front();
  f.scheduler->wake(f);
  return &f;
}

void WaitQueue::notify_all() noexcept {
  while (!fibers_.empty()) {
    FiberRecord& f = fibers_.pop_front();
    f.scheduler->wake(f);
  }
}

}  // namespace fiberloop::internal
