#include "sync/event.h"

#include "loop/internal/deadline.h"

namespace fiberloop {

void Event::set() noexcept {
  set_ = true;
  waiters_.notify_all();
}

void Event::wait() {
  if (!set_) waiters_.wait("Event::wait");
}

bool Event::wait_for(Duration timeout) {
  if (set_) return true;
  return waiters_.wait_until(internal::deadline_after(timeout), "Event::wait_for");
}

}  // namespace fiberloop
