// Mutex: mutual exclusion between fibers that may suspend while holding it.
//
//   fiberloop::Mutex m;
//   { std::lock_guard lock(m); balance += read_remote(); }   // may park inside
//
// FIFO hand-off: unlock() passes the mutex straight to the longest waiter,
// so no waiter starves and nobody can barge in between. Single loop (see
// event.h); the owner is a fiber, not a thread.
#pragma once

#include "loop/internal/fiber_record.h"
#include "sync/internal/waiters.h"

namespace fiberloop {

class Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // Takes the mutex, parking while another fiber holds it.
  // Throws: Cancelled, TimeoutError (the mutex is then not taken);
  //         std::logic_error outside a fiber, if this fiber holds it already,
  //         or from another loop's thread (as every operation).
  void lock() {
    internal::Scheduler* core = internal::Scheduler::current();
    internal::FiberRecord* self = core != nullptr ? core->running() : nullptr;
    if (owner_ == nullptr && self != nullptr && core == waiters_.home()) [[likely]] {
      owner_ = self;
      return;
    }
    lock_slow();
  }
  // Takes the mutex if it is free. Returns: whether it was taken.
  // Throws: std::logic_error outside a fiber.
  bool try_lock();
  // Releases the mutex, handing it to the first waiter if there is one.
  // Throws: std::logic_error unless the calling fiber holds it.
  void unlock() {
    if (owner_ != nullptr && owner_ == running() && waiters_.empty()) [[likely]] {
      owner_ = nullptr;
      return;
    }
    unlock_slow();
  }

 private:
  friend class ConditionVariable;
  // For ConditionVariable: take it back after a wait, whatever interrupts
  // arrive meanwhile (they stay pending).
  void lock_uninterruptible();

  // The running fiber of this thread's loop, or null. Inline: the
  // uncontended lock and unlock are a few loads and stores.
  static internal::FiberRecord* running() noexcept {
    internal::Scheduler* core = internal::Scheduler::current();
    return core != nullptr ? core->running() : nullptr;
  }
  void lock_slow();
  void unlock_slow();

  internal::FiberRecord* owner_ = nullptr;
  internal::WaitQueue waiters_{internal::WaitKind::kMutex};
};

}  // namespace fiberloop
