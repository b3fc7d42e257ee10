#include "sync/event.h"

#include "loop/internal/deadline.h"

namespace fiberloop {

void Event::set() {
  internal::SyncGuard guard(waiters_.home());
  set_.store(true, std::memory_order_release);
  waiters_.notify_all(guard);
}

void Event::clear() {
  internal::SyncGuard guard(waiters_.home());
  set_.store(false, std::memory_order_relaxed);
}

// The lock-free early return is for a local Event only (see wait()).
bool Event::wait_for(Duration timeout) { return wait_until(internal::deadline_from_now(timeout)); }

bool Event::wait_until(TimePoint deadline) {
  const bool local = waiters_.home().local_here();
  if (local && is_set()) return true;
  internal::SyncGuard guard(waiters_.home(), local, internal::Entry::waiting(deadline));
  if (guard.timed_out()) return is_set();  // its loop did not share it in time
  if (set_.load(std::memory_order_relaxed)) return true;
  return waiters_.wait(guard, deadline, "Event::wait");
}

}  // namespace fiberloop
