#include "sync/wait_group.h"

#include <stdexcept>

namespace fiberloop {

void WaitGroup::add(std::size_t n) {
  internal::SyncGuard guard(waiters_.home());
  count_.fetch_add(n, std::memory_order_relaxed);
}

void WaitGroup::done() {
  internal::SyncGuard guard(waiters_.home());
  const std::size_t count = count_.load(std::memory_order_relaxed);
  if (count == 0) {
    throw std::logic_error("WaitGroup::done: called more often than add() counted");
  }
  count_.store(count - 1, std::memory_order_release);
  if (count == 1) waiters_.notify_all(guard);
}

}  // namespace fiberloop
