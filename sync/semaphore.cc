#include "sync/semaphore.h"

namespace fiberloop {

void Semaphore::acquire() {
  waiters_.check("Semaphore::acquire");
  if (permits_ > 0 && waiters_.empty()) {
    --permits_;
    return;
  }
  waiters_.wait("Semaphore::acquire");  // release() handed us its permit
}

bool Semaphore::try_acquire() {
  waiters_.check("Semaphore::try_acquire");
  if (permits_ == 0 || !waiters_.empty()) return false;
  --permits_;
  return true;
}

void Semaphore::release() {
  waiters_.check("Semaphore::release");
  if (waiters_.notify_one() == nullptr) ++permits_;
}

}  // namespace fiberloop
