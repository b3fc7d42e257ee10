// ConditionVariable: wait, with a Mutex held, until another fiber signals.
//
//   std::unique_lock lock(m);
//   cv.wait(lock, [&] { return !queue.empty(); });
//
// Any thread, as Event.
#pragma once

#include <mutex>

#include "loop/internal/deadline.h"
#include "loop/options.h"
#include "sync/internal/waiters.h"
#include "sync/mutex.h"

namespace fiberloop {

class ConditionVariable {
 public:
  ConditionVariable() = default;
  ConditionVariable(const ConditionVariable&) = delete;
  ConditionVariable& operator=(const ConditionVariable&) = delete;

  // Releases the mutex, parks until notified, takes the mutex back. The
  // mutex is held again when this returns or throws.
  // Throws: Cancelled, TimeoutError (with the mutex held again);
  //         std::logic_error on a loop's thread outside a fiber (a plain
  //         thread blocks), or if `lock` does not own it.
  void wait(std::unique_lock<Mutex>& lock);
  // wait() until pred() holds (checked first, and after every wake-up).
  template <class Pred>
  void wait(std::unique_lock<Mutex>& lock, Pred pred) {
    while (!pred()) wait(lock);
  }
  // As wait(), giving up after `timeout` (in a fiber, measured from its
  // loop's timer clock: never early, at most 20 us late). Returns: false if
  // it timed out. Any other duration converts saturating (to_duration).
  bool wait_for(std::unique_lock<Mutex>& lock, Duration timeout);
  template <OtherDuration D>
  bool wait_for(std::unique_lock<Mutex>& lock, D timeout) {
    return wait_for(lock, fiberloop::to_duration(timeout));
  }
  // As wait(lock, pred) with a timeout. Returns: pred() at the end.
  template <class Pred>
  bool wait_for(std::unique_lock<Mutex>& lock, Duration timeout, Pred pred) {
    const TimePoint deadline = internal::deadline_from_now(timeout);
    while (!pred()) {
      if (!wait_until(lock, deadline)) return pred();
    }
    return true;
  }
  template <OtherDuration D, class Pred>
  bool wait_for(std::unique_lock<Mutex>& lock, D timeout, Pred pred) {
    return wait_for(lock, fiberloop::to_duration(timeout), std::move(pred));
  }

  // Wakes the longest waiter; a no-op if none.
  void notify_one();
  // Wakes every waiter.
  void notify_all();

 private:
  struct Relock;  // takes the mutex back on every way out of a wait
  bool wait_until(std::unique_lock<Mutex>& lock, TimePoint deadline);
  internal::WaitQueue waiters_{internal::WaitKind::kConditionVariable};
};

}  // namespace fiberloop
