#include "sync/condition_variable.h"

#include <stdexcept>

namespace fiberloop {
namespace {

void check_owned(const std::unique_lock<Mutex>& lock) {
  if (!lock.owns_lock()) {
    throw std::logic_error(
        "ConditionVariable::wait: the lock does not hold its mutex; lock it first");
  }
}

}  // namespace

// Takes the mutex back on every way out of a wait that released it, even an
// exception (any interrupt that arrives meanwhile stays pending), and hands
// it to the unique_lock again. Destroyed after the wait's guard: it may park.
struct ConditionVariable::Relock {
  std::unique_lock<Mutex>& lock;
  Mutex* mutex;
  bool released = false;
  ~Relock() {
    if (released) mutex->lock_uninterruptible();
    lock = std::unique_lock<Mutex>(*mutex, std::adopt_lock);
  }
  static void release(void* self) {
    auto& relock = *static_cast<Relock*>(self);
    relock.mutex->unlock();
    relock.released = true;
  }
};

void ConditionVariable::wait(std::unique_lock<Mutex>& lock) {
  (void)wait_until(lock, internal::kNever);
}

bool ConditionVariable::wait_until(std::unique_lock<Mutex>& lock, TimePoint deadline) {
  check_owned(lock);
  Mutex* m = lock.mutex();
  (void)lock.release();  // Relock gives it back
  Relock relock{lock, m};
  internal::SyncGuard guard(waiters_.home(), internal::Entry::waiting(deadline));
  if (guard.timed_out())
    return false;  // its loop did not share it in time: the mutex is still held
  // The mutex is released only once we are in the queue: a notify after it
  // reaches us, from any thread.
  return waiters_.wait(guard, deadline, "ConditionVariable::wait", &Relock::release, &relock);
}

bool ConditionVariable::wait_for(std::unique_lock<Mutex>& lock, Duration timeout) {
  return wait_until(lock, internal::deadline_from_now(timeout));
}

void ConditionVariable::notify_one() {
  internal::SyncGuard guard(waiters_.home());
  (void)waiters_.notify_one(guard);
}

void ConditionVariable::notify_all() {
  internal::SyncGuard guard(waiters_.home());
  waiters_.notify_all(guard);
}

}  // namespace fiberloop
