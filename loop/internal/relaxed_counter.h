// A counter that one thread (the loop's) increments and another may read
// (the stall watchdog). Relaxed loads and stores: on x86-64 these are the
// plain moves an ordinary counter compiles to, so the switch path pays
// nothing, and ThreadSanitizer sees no race.
#pragma once

#include <atomic>
#include <cstdint>

namespace fiberloop::internal {

class RelaxedCounter {
 public:
  // Only the owning thread increments.
  void operator++() noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

}  // namespace fiberloop::internal
