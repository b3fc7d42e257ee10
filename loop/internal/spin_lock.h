// SpinLock: for the few instructions a shared structure's owner and other
// threads both touch (a shared sync/ primitive, a loop's pool of records for
// fibers spawned from other threads). Never held across a park or a syscall.
#pragma once

#include <atomic>

namespace fiberloop::internal {

// Test-and-test-and-set: waiters spin on a plain load, not on the exchange.
class SpinLock {
 public:
  void lock() noexcept {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      while (locked_.load(std::memory_order_relaxed)) __builtin_ia32_pause();
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace fiberloop::internal
