#include "sync/internal/waiters.h"

#include <cerrno>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "loop/errors.h"

namespace fiberloop::internal {

// ---- SyncHome ---------------------------------------------------------------

SyncHome::SyncHome() noexcept {
  Scheduler* here = Scheduler::current();
  home_.store(here != nullptr ? here : kUnbound, std::memory_order_relaxed);
}

Scheduler* SyncHome::loop() const noexcept {
  Scheduler* home = home_.load(std::memory_order_acquire);
  return home == kUnbound || home == kShared ? nullptr : home;
}

void SyncHome::become_shared() noexcept { home_.store(kShared, std::memory_order_release); }

Entered SyncHome::enter_slow(Entry entry) {
  Scheduler* const here = Scheduler::current();
  Scheduler* home = home_.load(std::memory_order_acquire);
  for (;;) {
    if (home == kShared) return Entered::kShared;
    if (home == here) return Entered::kLocal;
    // Another loop's: that loop makes it shared between two of its fibers'
    // steps, so that none of its local operations is half done.
    if (home != kUnbound) {
      constexpr auto share = [](void* self) noexcept {
        static_cast<SyncHome*>(self)->become_shared();
      };
      if (!entry.interruptible) {
        if (call_on_loop_if_live(home, 0, share, this)) return Entered::kShared;
      } else {
        switch (ask_loop_if_live(home, 0, share, this, entry.deadline)) {
          case Asked::kAnswered:
            return Entered::kShared;
          case Asked::kTimedOut:
            return Entered::kTimedOut;
          case Asked::kGone:
            break;
        }
      }
    }
    // Nobody uses it locally (unbound, or its loop is gone): take it (a
    // loop), or share it (a plain thread).
    Scheduler* const next = here != nullptr && home == kUnbound ? here : kShared;
    if (home_.compare_exchange_weak(home, next, std::memory_order_acq_rel)) {
      return next == kShared ? Entered::kShared : Entered::kLocal;
    }
    // (`home` reloaded)
  }
}

// ---- ChannelOp ----------------------------------------------------------------

void ChannelOp::notify_select_thread() noexcept {
  std::atomic<std::uint32_t>& word = select->signal;
  state.store(kNotified, std::memory_order_release);
  word.store(1, std::memory_order_release);
  wake_thread(word);
}

void ChannelOp::fail(std::exception_ptr error) noexcept {
  value = new (std::nothrow) std::exception_ptr(std::move(error));
  failed = true;
  complete();
}

void rethrow_hand_off_failure(ChannelOp& op) {
  auto* stored = static_cast<std::exception_ptr*>(op.value);
  if (stored == nullptr) throw std::bad_alloc();  // the error's own copy failed
  const std::exception_ptr error = std::move(*stored);
  delete stored;
  op.value = nullptr;
  std::rethrow_exception(error);
}

WaitEnd settle_wait(const Waiter& waiter, WaitEnd end) noexcept {
  if (waiter.was_notified()) return WaitEnd::kNotified;  // perhaps while we took the lock
  if (waiter.fiber != nullptr) {
    FIBERLOOP_CHECK_FIBER(*waiter.fiber, end != WaitEnd::kNotified,
                          "a waiter was woken without being notified (a stale wake-up)");
  }
  return end;
}

void throw_interrupted(const char* what) {
  FiberRecord& self = running_fiber_or_throw(what);
  self.scheduler->deliver_interrupt(self);
  throw std::logic_error(std::string(what) + ": woken by an interrupt that is not pending");
}

// ---- WaitQueue ----------------------------------------------------------------

void WaitQueue::run_after_link(Waiter& waiter, void (*after_link)(void*), void* arg) {
  try {
    after_link(arg);
  } catch (...) {
    waiter.unlink();
    throw;
  }
}

bool WaitQueue::leave(Waiter& waiter, WaitEnd end, const char* what) {
  waiter.unlink();
  if (end == WaitEnd::kInterrupted) throw_interrupted(what);
  return false;
}

void WaitQueue::wait_uninterruptible(SyncGuard& guard, const char* what) {
  guard.reacquire(home_);
  Waiter waiter;
  waiter.prepare(what, /*interruptible=*/false);
  // An interrupt wakes us without a notification: queue again (at the back:
  // we were interrupted, not served) and keep waiting.
  for (;;) {
    waiters_.push_back(waiter);
    if (block(guard, home_, waiter, kNever, kind_) == WaitEnd::kNotified) return;
    waiter.unlink();
    if (waiter.fiber != nullptr) waiter.park = waiter.fiber->park_seq;
  }
}

void WaitQueue::notify_all(bool shared) noexcept {
  while (!waiters_.empty()) {
    Waiter& w = waiters_.pop_front();
    if (w.passed_by(shared)) continue;
    w.notify();
  }
}

}  // namespace fiberloop::internal
