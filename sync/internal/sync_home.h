// Where a sync/ primitive lives, and how it is shared between threads.
//
// A primitive starts local: bound to one loop (the loop of the thread that
// made it, or the first loop to use it) and used without any lock, exactly
// as in a single-loop program. The first operation from anywhere else (a
// fiber of another loop, a plain thread) makes it shared, for good: from then
// on every operation takes its spin lock. The switch happens on the home
// loop's thread (a post through its cross-thread queue), between two of its
// fibers' steps, so that no local operation is ever half done when the lock
// starts to matter. Same-loop use pays one load and one compare.
#pragma once

#include <atomic>
#include <cstdint>

#include "loop/internal/deadline.h"
#include "loop/internal/scheduler.h"
#include "loop/internal/waiter.h"

namespace fiberloop::internal {

// How an operation's first use of a primitive of another loop waits for
// that loop to share it. An operation that may park anyway (a lock, a recv,
// a wait) gives that wait up for a timeout or a cancel, and throws it, or
// at its own deadline, and times out (ask_loop_if_live): Entry::waiting().
// The others (an unlock, a send that never waits, a notify) wait it out,
// and throw nothing they did not wait for: Entry{}.
struct Entry {
  bool interruptible = false;
  TimePoint deadline = kNever;
  static constexpr Entry waiting(TimePoint deadline = kNever) noexcept { return {true, deadline}; }
};

// What entering a primitive found: local to the caller's loop (no lock),
// shared (its lock), or the entry's deadline passed first (the operation
// times out, touching nothing).
enum class Entered : std::uint8_t { kLocal, kShared, kTimedOut };

class SyncHome {
 public:
  SyncHome() noexcept;
  SyncHome(const SyncHome&) = delete;
  SyncHome& operator=(const SyncHome&) = delete;

  // Whether the caller may use the primitive without its lock: it is local
  // to the caller's loop. Inline: the same-loop path.
  bool local_here() const noexcept {
    return home_.load(std::memory_order_relaxed) == Scheduler::current();
  }
  // Makes the primitive usable by the caller: local to the caller's loop,
  // or shared (the caller then takes lock()). Binds an unbound primitive to
  // the caller's loop (a plain thread shares it); makes a primitive of
  // another loop shared, waiting for that loop to do it (one of its
  // iterations) as `entry` says. A primitive whose loop is gone is shared
  // at once.
  // Throws: Cancelled, TimeoutError (Entry::waiting() only).
  Entered enter(Entry entry = {}) {
    if (local_here()) [[likely]]
      return Entered::kLocal;
    return enter_slow(entry);
  }
  Entered enter_slow(Entry entry = {});
  // Whether the primitive is shared (then every operation takes the lock).
  bool shared() const noexcept { return home_.load(std::memory_order_acquire) == kShared; }
  // The home loop while local; null when shared or unbound.
  Scheduler* loop() const noexcept;

  SpinLock& lock() noexcept { return lock_; }

  // Called by the home loop (a RemoteItem it handles).
  void become_shared() noexcept;

 private:
  static inline Scheduler* const kUnbound = reinterpret_cast<Scheduler*>(std::uintptr_t{1});
  static inline Scheduler* const kShared = reinterpret_cast<Scheduler*>(std::uintptr_t{2});

  std::atomic<Scheduler*> home_;
  SpinLock lock_;
};

// One operation's hold on a primitive: the lock while the primitive is
// shared, nothing while it is local. Let go on every way out.
class SyncGuard {
 public:
  // Inline, the local case first: the same-loop path.
  [[gnu::always_inline]] explicit SyncGuard(SyncHome& home, Entry entry = {}) {
    if (home.local_here()) [[likely]]
      return;
    take(home, home.enter_slow(entry));
  }
  // The same, for a caller that has just asked home.local_here() (with no
  // suspension since): `local` is the answer, not asked again.
  [[gnu::always_inline]] SyncGuard(SyncHome& home, bool local, Entry entry = {}) {
    if (local) [[likely]]
      return;
    take(home, home.enter_slow(entry));
  }
  [[gnu::always_inline]] ~SyncGuard() { release(); }
  SyncGuard(const SyncGuard&) = delete;
  SyncGuard& operator=(const SyncGuard&) = delete;

  bool shared() const noexcept { return lock_ != nullptr; }
  // The entry's deadline passed before the primitive's loop shared it: the
  // guard holds nothing, and the operation times out at once.
  bool timed_out() const noexcept { return timed_out_; }
  // Lets go around a park: unlocks a shared primitive.
  [[gnu::always_inline]] void release() noexcept {
    if (!held_) return;
    held_ = false;
    if (lock_ != nullptr) {
      lock_->unlock();
      --tls_sync_locks_held;
    }
  }
  // After a park: holds the primitive again, locking it if it is shared
  // now (it may have become shared while this fiber was parked on its home
  // loop). A no-op while held.
  [[gnu::always_inline]] void reacquire(SyncHome& home) noexcept {
    if (held_) return;
    if (lock_ == nullptr && home.shared()) lock_ = &home.lock();
    if (lock_ != nullptr) {
      lock_->lock();
      ++tls_sync_locks_held;
    }
    held_ = true;
  }

 private:
  void take(SyncHome& home, Entered entered) noexcept {
    if (entered == Entered::kTimedOut) {
      timed_out_ = true;
      held_ = false;
      return;
    }
    if (entered == Entered::kShared) {
      lock_ = &home.lock();
      lock_shared();
    }
  }
  // A cancel a closing loop delivers makes its pass through the ready
  // queue here, before the lock (Scheduler::throw_interrupt cannot, under
  // it), so that a fiber retrying a shared primitive in a loop that catches
  // Cancelled still comes back to the run loop.
  void lock_shared() noexcept {
    Scheduler::pass_before_sync_lock();
    lock_->lock();
    ++tls_sync_locks_held;
  }

  SpinLock* lock_ = nullptr;
  bool held_ = true;
  bool timed_out_ = false;
};

}  // namespace fiberloop::internal
