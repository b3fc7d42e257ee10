// WaitGroup: wait until a count of outstanding jobs drops to zero (Go's
// sync.WaitGroup).
//
//   fiberloop::WaitGroup wg;
//   for (auto& url : urls) { wg.add(1); spawn([&] { fetch(url); wg.done(); }); }
//   wg.wait();
//
// Single loop (see event.h).
#pragma once

#include <cstddef>

#include "sync/internal/waiters.h"

namespace fiberloop {

class WaitGroup {
 public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  // Adds `n` outstanding jobs.
  // Throws: std::logic_error from another loop's thread (as every operation).
  void add(std::size_t n = 1) {
    waiters_.check("WaitGroup::add");
    count_ += n;
  }
  // Marks one job done; at zero, wakes every waiter.
  // Throws: std::logic_error if no job is outstanding.
  void done();
  // Parks until the count is zero; returns at once if it is.
  // Throws: Cancelled; TimeoutError; std::logic_error outside a fiber.
  void wait();

  // The count now: add()s not yet matched by done().
  std::size_t count() const noexcept { return count_; }

 private:
  std::size_t count_ = 0;
  internal::WaitQueue waiters_{internal::WaitKind::kWaitGroup};
};

}  // namespace fiberloop
