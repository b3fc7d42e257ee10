// A counter that one thread (the loop's) increments and another may read
// (the stall watchdog).
//
// The increment is a plain one. As a std::atomic (even relaxed) it cost 15
// to 20 ns per channel message and 10 ns per spawn+join (bench/sync_bench):
// GCC does not optimize memory accesses across atomic operations, and these
// sit in the inlined switch path. The reader loads the 8 aligned bytes with
// __atomic_load_n, so it sees the old or the new value, never a torn one; in
// C++'s memory model that is still a data race, so ThreadSanitizer builds
// use a real std::atomic and stay report-free.
#pragma once

#include <atomic>
#include <cstdint>

#include "fiber/internal/context.h"  // FIBERLOOP_TSAN

namespace fiberloop::internal {

class RelaxedCounter {
 public:
#if FIBERLOOP_TSAN
  void operator++() noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
#else
  // Only the owning thread increments.
  void operator++() noexcept { ++value_; }
  // Any thread.
  std::uint64_t get() const noexcept { return __atomic_load_n(&value_, __ATOMIC_RELAXED); }

 private:
  std::uint64_t value_ = 0;
#endif
};

}  // namespace fiberloop::internal
