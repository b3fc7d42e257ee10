#include "sync/semaphore.h"

namespace fiberloop {

bool Semaphore::try_acquire() {
  internal::SyncGuard guard(waiters_.home());
  const std::size_t permits = permits_.load(std::memory_order_relaxed);
  if (permits == 0 || !waiters_.empty()) return false;
  permits_.store(permits - 1, std::memory_order_relaxed);
  return true;
}

void Semaphore::release() {
  internal::SyncGuard guard(waiters_.home());
  if (waiters_.notify_one(guard) == nullptr) permits_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace fiberloop
