#include "sync/semaphore.h"

namespace fiberloop {

void Semaphore::acquire() {
  if (permits_ > 0 && waiters_.empty()) {
    --permits_;
    return;
  }
  waiters_.wait("Semaphore::acquire");  // release() handed us its permit
}

bool Semaphore::try_acquire() noexcept {
  if (permits_ == 0 || !waiters_.empty()) return false;
  --permits_;
  return true;
}

void Semaphore::release() noexcept {
  if (waiters_.notify_one() == nullptr) ++permits_;
}

}  // namespace fiberloop
