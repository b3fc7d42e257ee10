// WaitGroup: wait until a count of outstanding jobs drops to zero (Go's
// sync.WaitGroup).
//
//   fiberloop::WaitGroup wg;
//   for (auto& url : urls) { wg.add(1); spawn([&] { fetch(url); wg.done(); }); }
//   wg.wait();
//
// Any thread, as Event.
#pragma once

#include <atomic>

#include <cstddef>

#include "sync/internal/waiters.h"

namespace fiberloop {

class WaitGroup {
 public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  // Adds `n` outstanding jobs. Unlike Go's Add, `n` is a count, not a delta:
  // a job ends with done(), not add(-1).
  void add(std::size_t n = 1);
  // Marks one job done; at zero, wakes every waiter.
  // Throws: std::logic_error if no job is outstanding.
  void done();
  // Parks the fiber (blocks a plain thread) until the count is zero;
  // returns at once if it is.
  // Throws: Cancelled; TimeoutError; std::logic_error when it must wait on a
  //         loop's thread outside a fiber.
  // Inline, as Mutex::lock: no function return above the switch. Lock-free
  // only while local: a shared WaitGroup may be inside done() on another
  // thread, and the caller may destroy it once wait() returns (see
  // Event::wait).
  [[gnu::always_inline]] void wait() {
    const bool local = waiters_.home().local_here();
    if (local && count() == 0) return;
    internal::SyncGuard guard(waiters_.home(), local, internal::Entry::waiting());
    if (count_.load(std::memory_order_relaxed) != 0) {
      waiters_.wait(guard, internal::kNever, "WaitGroup::wait");
    }
  }

  // The count now: add()s not yet matched by done().
  std::size_t count() const noexcept { return count_.load(std::memory_order_acquire); }

 private:
  std::atomic<std::size_t> count_{0};  // atomic for count(); changed under the guard
  internal::WaitQueue waiters_{internal::WaitKind::kWaitGroup};
};

}  // namespace fiberloop
