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

// Takes the mutex back on every way out of a wait, even an exception (any
// interrupt that arrives meanwhile stays pending), and hands it to the
// unique_lock again.
struct ConditionVariable::Relock {
  std::unique_lock<Mutex>& lock;
  Mutex* mutex;
  ~Relock() {
    mutex->lock_uninterruptible();
    (void)lock.release();
    lock = std::unique_lock<Mutex>(*mutex, std::adopt_lock);
  }
};

void ConditionVariable::wait(std::unique_lock<Mutex>& lock) {
  waiters_.check("ConditionVariable::wait");
  check_owned(lock);
  Mutex* m = lock.mutex();
  lock.unlock();
  Relock relock{lock, m};
  waiters_.wait("ConditionVariable::wait");
}

bool ConditionVariable::wait_until(std::unique_lock<Mutex>& lock, TimePoint deadline) {
  waiters_.check("ConditionVariable::wait_for");
  check_owned(lock);
  Mutex* m = lock.mutex();
  lock.unlock();
  Relock relock{lock, m};
  return waiters_.wait_until(deadline, "ConditionVariable::wait_for");
}

bool ConditionVariable::wait_for(std::unique_lock<Mutex>& lock, Duration timeout) {
  return wait_until(lock, internal::deadline_after(timeout));
}

}  // namespace fiberloop
