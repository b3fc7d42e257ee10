// Mutex: mutual exclusion between fibers that may suspend while holding it.
//
//   fiberloop::Mutex m;
//   { std::lock_guard lock(m); balance += read_remote(); }   // may park inside
//
// FIFO hand-off: unlock() passes the mutex straight to the longest waiter,
// so no waiter starves and nobody can barge in between. The owner is a
// fiber (or, outside any fiber, a plain thread). Any thread, as Event.
#pragma once

#include <mutex>

#include "loop/internal/fiber_record.h"
#include "sync/internal/waiters.h"

namespace fiberloop {

class Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // Takes the mutex, parking the fiber (blocking a plain thread) while
  // another holds it.
  // Throws: Cancelled, TimeoutError (the mutex is then not taken);
  //         std::logic_error if the caller holds it already, or when it must
  //         wait on a loop's thread outside a fiber.
  // Inline, the contended same-loop case too: the park is then in the
  // caller's frame, and no function return sits above the switch (each
  // costs a mispredict at resumption: fiber/internal/context.h).
  [[gnu::always_inline]] void lock() {
    if (waiters_.home().local_here()) [[likely]] {
      internal::FiberRecord* self = internal::Scheduler::current()->running();
      if (self != nullptr) [[likely]] {
        if (owner_ == nullptr) [[likely]] {
          owner_ = self;
          return;
        }
        if (owner_ != self) {
          internal::SyncGuard guard(waiters_.home(), /*local=*/true);
          waiters_.wait(guard, internal::kNever, "Mutex::lock");  // unlock() made us the owner
          return;
        }
      }
    }
    lock_slow();
  }
  // Takes the mutex if it is free. Returns: whether it was taken.
  bool try_lock();
  // Releases the mutex, handing it to the first waiter if there is one.
  // Throws: std::logic_error unless the caller (fiber, or plain thread)
  //         holds it.
  void unlock() {
    if (waiters_.home().local_here() && owner_ == internal::Scheduler::current()->running() &&
        owner_ != nullptr) [[likely]] {
      if (waiters_.empty()) [[likely]] {
        owner_ = nullptr;
        return;
      }
      internal::SyncGuard guard(waiters_.home(), /*local=*/true);
      owner_ = waiters_.notify_one(guard);  // hand-off, or free
      return;
    }
    unlock_slow();
  }

 private:
  friend class ConditionVariable;
  // For ConditionVariable: take it back after a wait, whatever interrupts
  // arrive meanwhile (they stay pending).
  void lock_uninterruptible();
  void lock_slow();
  void unlock_slow();

  // The holder: a fiber, or a plain thread (internal::caller_identity()).
  const void* owner_ = nullptr;
  internal::WaitQueue waiters_{internal::WaitKind::kMutex};
};

}  // namespace fiberloop

// std::lock_guard<fiberloop::Mutex> and std::scoped_lock<fiberloop::Mutex>:
// the standard's interface, with the constructor that may park inline in
// the caller. The primary templates' constructors are functions of their
// own once Mutex::lock() is inlined into them (too big for GCC to inline
// further), so each resumption of a fiber that waited for the mutex
// returned through one: a mispredicted return per hand-off
// (fiber/internal/context.h). The standard allows specializing its
// templates for a program's own types. (std::unique_lock<Mutex> keeps the
// standard's: its lock() is such a frame, one mispredict per contended
// lock.)
template <>
class std::lock_guard<fiberloop::Mutex> {
 public:
  using mutex_type = fiberloop::Mutex;
  [[gnu::always_inline]] explicit lock_guard(mutex_type& m) : m_(m) { m_.lock(); }
  lock_guard(mutex_type& m, std::adopt_lock_t) noexcept : m_(m) {}
  ~lock_guard() { m_.unlock(); }
  lock_guard(const lock_guard&) = delete;
  lock_guard& operator=(const lock_guard&) = delete;

 private:
  mutex_type& m_;
};

template <>
class std::scoped_lock<fiberloop::Mutex> {
 public:
  using mutex_type = fiberloop::Mutex;
  [[gnu::always_inline]] explicit scoped_lock(mutex_type& m) : m_(m) { m_.lock(); }
  explicit scoped_lock(std::adopt_lock_t, mutex_type& m) noexcept : m_(m) {}
  ~scoped_lock() { m_.unlock(); }
  scoped_lock(const scoped_lock&) = delete;
  scoped_lock& operator=(const scoped_lock&) = delete;

 private:
  mutex_type& m_;
};
