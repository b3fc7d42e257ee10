#include "sync/mutex.h"

#include <stdexcept>

namespace fiberloop {

void Mutex::lock_slow() {
  waiters_.check("Mutex::lock");
  internal::FiberRecord& self = internal::running_fiber_or_throw("Mutex::lock");
  if (owner_ == nullptr) {
    owner_ = &self;
    return;
  }
  if (owner_ == &self) {
    throw std::logic_error("Mutex::lock: this fiber holds the mutex already (it is not recursive)");
  }
  waiters_.wait("Mutex::lock");  // unlock() made us the owner before waking us
}

bool Mutex::try_lock() {
  waiters_.check("Mutex::try_lock");
  internal::FiberRecord& self = internal::running_fiber_or_throw("Mutex::try_lock");
  if (owner_ != nullptr) return false;
  owner_ = &self;
  return true;
}

void Mutex::unlock_slow() {
  waiters_.check("Mutex::unlock");
  internal::FiberRecord& self = internal::running_fiber_or_throw("Mutex::unlock");
  if (owner_ != &self) {
    throw std::logic_error(owner_ == nullptr
                               ? "Mutex::unlock: the mutex is not locked"
                               : "Mutex::unlock: another fiber holds the mutex; only its owner "
                                 "may unlock it");
  }
  owner_ = waiters_.notify_one();  // hand-off, or free
}

void Mutex::lock_uninterruptible() {
  waiters_.check("Mutex::lock");
  internal::FiberRecord& self = internal::running_fiber_or_throw("Mutex::lock");
  if (owner_ == nullptr) {
    owner_ = &self;
    return;
  }
  waiters_.wait_uninterruptible("Mutex::lock");
}

}  // namespace fiberloop
