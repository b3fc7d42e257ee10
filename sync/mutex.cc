#include "sync/mutex.h"

#include <stdexcept>

namespace fiberloop {

void Mutex::lock_slow() {
  internal::SyncGuard guard(waiters_.home(), internal::Entry::waiting());
  const void* self = internal::caller_identity();
  if (owner_ == nullptr) {
    owner_ = self;
    return;
  }
  if (owner_ == self) {
    throw std::logic_error("Mutex::lock: the caller holds the mutex already (it is not recursive)");
  }
  waiters_.wait(guard, internal::kNever, "Mutex::lock");  // unlock() made us the owner
}

bool Mutex::try_lock() {
  internal::SyncGuard guard(waiters_.home());
  if (owner_ != nullptr) return false;
  owner_ = internal::caller_identity();
  return true;
}

void Mutex::unlock_slow() {
  internal::SyncGuard guard(waiters_.home());
  if (owner_ != internal::caller_identity()) {
    throw std::logic_error(owner_ == nullptr
                               ? "Mutex::unlock: the mutex is not locked"
                               : "Mutex::unlock: another fiber or thread holds the mutex; only "
                                 "its owner may unlock it");
  }
  owner_ = waiters_.notify_one(guard);  // hand-off, or free
}

void Mutex::lock_uninterruptible() {
  internal::SyncGuard guard(waiters_.home());
  if (owner_ == nullptr) {
    owner_ = internal::caller_identity();
    return;
  }
  waiters_.wait_uninterruptible(guard, "Mutex::lock");
}

}  // namespace fiberloop
