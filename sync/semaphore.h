// Semaphore: at most N fibers past acquire() at once.
//
//   fiberloop::Semaphore slots(10);
//   slots.acquire(); fetch(url); slots.release();
//
// FIFO: release() hands its permit straight to the longest waiter. A waiter
// cancelled before it got the permit leaves the queue, and the permit goes to
// the next one; none is lost. Any thread, as Event.
#pragma once

#include <atomic>

#include <cstddef>

#include "sync/internal/waiters.h"

namespace fiberloop {

class Semaphore {
 public:
  // A semaphore with `permits` available.
  explicit Semaphore(std::size_t permits) noexcept : permits_(permits) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // Takes a permit, parking the fiber (blocking a plain thread) until one
  // is free.
  // Throws: Cancelled, TimeoutError (no permit taken); std::logic_error
  //         when it must wait on a loop's thread outside a fiber.
  // Inline, as Mutex::lock: no function return above the switch.
  [[gnu::always_inline]] void acquire() {
    internal::SyncGuard guard(waiters_.home(), internal::Entry::waiting());
    const std::size_t permits = permits_.load(std::memory_order_relaxed);
    if (permits > 0 && waiters_.empty()) {
      permits_.store(permits - 1, std::memory_order_relaxed);
      return;
    }
    waiters_.wait(guard, internal::kNever, "Semaphore::acquire");  // release() handed us its permit
  }
  // Takes a permit if one is free. Returns: whether it took one.
  bool try_acquire();
  // Returns a permit: to the longest waiter if any, else to the pool.
  // Unbounded, as asyncio's Semaphore (not its BoundedSemaphore): a release
  // without an acquire adds a permit beyond the initial count.
  void release();

  // Permits available now.
  std::size_t available() const noexcept { return permits_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::size_t> permits_;  // atomic for available(); changed under the guard
  internal::WaitQueue waiters_{internal::WaitKind::kSemaphore};
};

}  // namespace fiberloop
