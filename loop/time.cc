// Time and the idle loop: sleeps, callbacks (call_soon/call_later/call_at),
// cross-thread posts, the poll that blocks an idle loop, timeouts, and the
// worker threads of run_blocking().
#include <chrono>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "loop/errors.h"
#include "loop/internal/deadline.h"
#include "loop/internal/loop_core.h"
#include "loop/internal/own_thread.h"
#include "loop/internal/timeout_scope.h"
#include "loop/timer_handle.h"

namespace fiberloop::internal {
namespace {

// When the loop is about to block for long (or with no deadline at all), the
// pages of pooled stacks beyond these go back to the kernel. Short waits keep
// the pool warm: a burst of fibers that sleeps 10 ms must not fault its
// stacks in again.
constexpr std::size_t kIdleStacksKept = 1024;
constexpr Duration kLongIdle = std::chrono::seconds(1);

// While a loop with nothing to do waits for another thread's post, how often
// it looks whether such a thread still exists: from 10 ms, doubling, to 1 s.
constexpr Duration kFirstOtherThreadRecheck = std::chrono::milliseconds(10);
constexpr Duration kLastOtherThreadRecheck = std::chrono::seconds(1);

struct SleepTimer : TimerNode {
  FiberRecord* fiber = nullptr;
};

std::string describe_duration(Duration d) {
  if (d <= Duration::zero()) return "0 ms";
  if (d == Duration::max()) return "forever";
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  if (us % 1000 == 0) return std::to_string(us / 1000) + " ms";
  return std::to_string(us) + " us";
}

}  // namespace

// ---- sleeping ---------------------------------------------------------------

void LoopCore::sleep_until(TimePoint when) {
  FiberRecord& self = running_fiber("this_fiber::sleep_until");
  SleepTimer timer;
  timer.fiber = &self;
  timer.fire = [](TimerNode* node) {
    FiberRecord& f = *static_cast<SleepTimer*>(node)->fiber;
    f.loop->wake(f);
  };
  timers_.push(timer, when);
  try {
    park(WaitKind::kSleep, when.time_since_epoch().count());  // the timer fired (and left
                                                              // the heap) if this returns
  } catch (...) {
    timers_.remove(timer);
    throw;
  }
}

// ---- callbacks --------------------------------------------------------------

TimerHandle LoopCore::call_soon(std::function<void()> fn) {
  check_thread("Loop::call_soon");
  if (closing_) return {};  // dropped: `fn` is destroyed on return
  Callback& c = callbacks_->allocate(std::move(fn));
  c.state = Callback::State::kSoon;
  soon_.push_back(c.index);
  return TimerHandle(callbacks_, c.index, c.generation);
}

TimerHandle LoopCore::call_at(TimePoint when, std::function<void()> fn) {
  check_thread("Loop::call_at");
  if (closing_) return {};
  Callback& c = callbacks_->allocate(std::move(fn));
  c.state = Callback::State::kTimer;
  c.fire = [](TimerNode* node) {
    auto& cb = *static_cast<Callback*>(node);
    cb.state = Callback::State::kSoon;
    cb.table->core->soon_.push_back(cb.index);
  };
  timers_.push(c, when);
  return TimerHandle(callbacks_, c.index, c.generation);
}

void LoopCore::cancel_callback(CallbackTable& table, std::uint32_t slot, std::uint32_t generation) {
  LoopCore* core = table.core;
  if (core == nullptr || slot >= table.size()) return;
  core->check_thread("TimerHandle::cancel");
  Callback& c = table[slot];
  if (c.generation != generation) return;  // ran or was cancelled already
  if (c.state == Callback::State::kTimer) {
    core->timers_.remove(c);
    table.release(c);
  } else if (c.state == Callback::State::kSoon) {
    c.state = Callback::State::kCancelled;  // soon_ still names it; run_callbacks frees it
    c.fn = nullptr;
  }
}

void LoopCore::run_callbacks() {
  if (soon_.empty()) return;
  running_.swap(soon_);  // callbacks queued while these run wait for the next pass
  for (std::uint32_t index : running_) {
    Callback& c = (*callbacks_)[index];
    if (c.state != Callback::State::kSoon) {
      callbacks_->release(c);  // cancelled
      continue;
    }
    std::function<void()> fn = std::move(c.fn);
    callbacks_->release(c);  // its handle is no longer active while it runs
    ++callbacks_run_;
    in_callback_.store(true, std::memory_order_relaxed);
    try {
      fn();
    } catch (...) {
      report(std::current_exception(), FiberInfo{0, "loop callback", {}});
    }
    in_callback_.store(false, std::memory_order_relaxed);
  }
  running_.clear();
}

void LoopCore::discard_callbacks() noexcept {
  for (std::uint32_t i = 0; i < callbacks_->size(); ++i) {
    Callback& c = (*callbacks_)[i];
    if (c.state == Callback::State::kTimer) timers_.remove(c);
    if (c.state != Callback::State::kFree) callbacks_->release(c);
  }
  soon_.clear();
}

// ---- other threads ----------------------------------------------------------

void LoopCore::call_soon_threadsafe(std::function<void()> fn) {
  {
    std::lock_guard lock(remote_mutex_);
    remote_.push_back(std::move(fn));
  }
  notify_remote();
}

void LoopCore::notify_remote() noexcept {
  // Pairs with poll_and_expire(): whichever of the two stores comes first,
  // the other side sees it, so a post never sleeps in a blocked loop.
  remote_pending_.store(true, std::memory_order_seq_cst);
  if (polling_.load(std::memory_order_seq_cst)) poller_.wake();
}

void LoopCore::take_remote() {
  if (!remote_pending_.exchange(false, std::memory_order_acquire)) return;
  if (dump_requested_.exchange(false, std::memory_order_relaxed)) dump(std::cerr);
  if (closing_) return drop_remote();
  std::vector<std::function<void()>> posted;
  {
    std::lock_guard lock(remote_mutex_);
    posted.swap(remote_);
  }
  for (auto& fn : posted) {
    Callback& c = callbacks_->allocate(std::move(fn));
    c.state = Callback::State::kSoon;
    soon_.push_back(c.index);
  }
}

// ---- the poll ---------------------------------------------------------------

bool LoopCore::poll_and_expire() {
  const bool busy = !ready_.empty() || !soon_.empty();
  // Work that other threads will bring: run_blocking() jobs and KeepAlives.
  // Shutdown waits for neither.
  const bool expected =
      !closing_ && (jobs_outstanding_ != 0 || keep_alives_.load(std::memory_order_relaxed) != 0);
  std::optional<Duration> timeout;  // none: until an fd event or a wake-up
  if (!busy && timers_.empty() && fd_waiters_ == 0 && !expected) {
    // Nothing here can make progress. Fibers that wait may still be woken by
    // a post from a thread that is not fiberloop's: wait for it (as asyncio
    // and Boost.Fiber do), and look again now and then, in case that thread
    // ends without posting. Otherwise it is a deadlock (Go's rule).
    if (closing_ || all_.empty() || !other_threads_exist()) {
      other_thread_recheck_ = kFirstOtherThreadRecheck;
      return false;
    }
    timeout = other_thread_recheck_;
    other_thread_recheck_ = std::min(other_thread_recheck_ * 2, kLastOtherThreadRecheck);
  } else {
    other_thread_recheck_ = kFirstOtherThreadRecheck;
    if (busy || closing_) {  // a closing loop waits for nothing
      timeout = Duration::zero();
    } else if (!timers_.empty()) {
      timeout = time_until(timers_.next_deadline(), Clock::now());
    }
  }
  const bool blocks = !timeout || *timeout > Duration::zero();
  if (blocks || fd_waiters_ != 0) {  // else there is nothing to poll for
    if (blocks) {
      const bool long_idle = !timeout || *timeout >= kLongIdle;
      if (long_idle && stacks_.trim_worthwhile(kIdleStacksKept)) stacks_.trim(kIdleStacksKept);
      polling_.store(true, std::memory_order_seq_cst);
      if (remote_pending_.load(std::memory_order_seq_cst)) timeout = Duration::zero();
    }
    bool woken = false;
    for (const Readiness& r : poller_.wait(timeout, &woken)) on_ready(r);
    polling_.store(false, std::memory_order_relaxed);
  }
  const TimePoint now = Clock::now();
  coarse_now_ = now;
  while (TimerNode* node = timers_.pop_expired(now)) node->fire(node);
  return !closing_ || !ready_.empty();
}

// ---- timeouts ---------------------------------------------------------------

void LoopCore::throw_interrupt(FiberRecord& self) {
  if (self.pending & FiberRecord::kCancel) {
    if (LoopCore& loop = *self.loop; loop.closing_) {
      // Delivered again at every suspension point, and only after a pass
      // through the ready queue: a fiber that catches it in a loop still
      // comes back to the scheduler, which abandons it (loop/shutdown.cc).
      loop.make_ready(self);
      loop.suspend(self);
    } else {
      self.pending &= static_cast<std::uint8_t>(~FiberRecord::kCancel);
    }
    throw fiberloop::Cancelled{};
  }
  const TimeoutScope* scope = TimeoutScope::expired(self.timeouts);
  std::string what = "with_timeout: ";
  if (scope != nullptr) {
    what += describe_duration(scope->timeout) + " elapsed (the timeout set at " +
            scope->where.file_name() + ":" + std::to_string(scope->where.line()) + ")";
  } else {
    what += "deadline passed";
  }
  throw fiberloop::TimeoutError(what);
}

TimeoutScope::TimeoutScope(Duration timeout, std::source_location where)
    : timeout(timeout),
      deadline(deadline_after(timeout)),
      where(where),
      fiber(&running_fiber_or_throw("with_timeout")),
      outer(fiber->timeouts) {
  fire = [](TimerNode* node) {
    auto& scope = *static_cast<TimeoutScope*>(node);
    scope.fired = true;
    scope.fiber->loop->interrupt(*scope.fiber, FiberRecord::kTimeout);
  };
  fiber->loop->add_timer(*this, deadline);
  fiber->timeouts = this;
}

TimeoutScope::~TimeoutScope() {
  fiber->loop->remove_timer(*this);
  fiber->timeouts = outer;
  if (fired && expired(outer) == nullptr) {
    fiber->pending &= static_cast<std::uint8_t>(~FiberRecord::kTimeout);
  }
}

const TimeoutScope* TimeoutScope::expired(const TimeoutScope* innermost) noexcept {
  const TimeoutScope* earliest = nullptr;
  for (const TimeoutScope* s = innermost; s != nullptr; s = s->outer) {
    if (s->fired && (earliest == nullptr || s->deadline <= earliest->deadline)) earliest = s;
  }
  return earliest;
}

// ---- run_blocking -----------------------------------------------------------

void LoopCore::submit_blocking(std::function<void()> job) {
  if (!pool_) pool_ = std::make_unique<ThreadPool>(options_.blocking_threads);
  ++jobs_outstanding_;
  try {
    pool_->submit(std::move(job));
  } catch (...) {
    --jobs_outstanding_;
    throw;
  }
}

}  // namespace fiberloop::internal

namespace fiberloop {

void TimerHandle::cancel() {
  if (table_) internal::LoopCore::cancel_callback(*table_, slot_, generation_);
}

bool TimerHandle::active() const noexcept {
  if (!table_ || table_->core == nullptr || slot_ >= table_->size()) return false;
  const internal::Callback& c = (*table_)[slot_];
  return c.generation == generation_ && (c.state == internal::Callback::State::kSoon ||
                                         c.state == internal::Callback::State::kTimer);
}

}  // namespace fiberloop
