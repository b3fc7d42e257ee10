// Event: a flag fibers can wait for (asyncio.Event).
//
//   fiberloop::Event ready;
//   spawn([&] { ready.wait(); use(); });
//   ...; ready.set();   // wakes every waiter
//
// Any thread: fibers of any loop and plain threads may set, clear and wait
// (a plain thread's wait blocks it). Used within one loop it takes no lock;
// see docs/CORES.md for what crossing loops costs.
#pragma once

#include <atomic>

#include "loop/options.h"
#include "sync/internal/waiters.h"

namespace fiberloop {

class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  // Sets the flag and wakes every waiter. Later wait()s return at once.
  void set();
  // Clears the flag. Waiters already woken still return.
  void clear();
  // Whether the flag is set.
  bool is_set() const noexcept { return set_.load(std::memory_order_acquire); }

  // Parks the fiber (blocks a plain thread) until the flag is set; returns
  // at once if it is.
  // Throws: Cancelled; TimeoutError; std::logic_error on a loop's thread
  //         outside a fiber.
  // Inline, as Mutex::lock: the park is then in the caller's frame, and no
  // function return sits above the switch (each costs a mispredict at
  // resumption: fiber/internal/context.h).
  // The lock-free early return is for a local Event only: a shared one may
  // be in the middle of set() on another thread, and the caller may destroy
  // it as soon as wait() returns, so wait() takes the lock, which set() lets
  // go of last.
  [[gnu::always_inline]] void wait() {
    const bool local = waiters_.home().local_here();
    if (local && is_set()) return;
    internal::SyncGuard guard(waiters_.home(), local, internal::Entry::waiting());
    if (!set_.load(std::memory_order_relaxed))
      waiters_.wait(guard, internal::kNever, "Event::wait");
  }
  // As wait(), giving up after `timeout` (in a fiber, measured from its
  // loop's timer clock: never early, at most 20 us late). Returns: whether
  // the flag was set. Any other duration converts saturating (to_duration).
  bool wait_for(Duration timeout);
  template <OtherDuration D>
  bool wait_for(D timeout) {
    return wait_for(fiberloop::to_duration(timeout));
  }

 private:
  bool wait_until(TimePoint deadline);
  std::atomic<bool> set_{false};  // atomic for is_set() from anywhere; written under the guard
  internal::WaitQueue waiters_{internal::WaitKind::kEvent};
};

}  // namespace fiberloop
