#include "sync/event.h"

#include "loop/internal/deadline.h"

namespace fiberloop {

void Event::set() {
  waiters_.check("Event::set");
  set_ = true;
  waiters_.notify_all();
}

void Event::wait() {
  waiters_.check("Event::wait");
  if (!set_) waiters_.wait("Event::wait");
}

bool Event::wait_for(Duration timeout) {
  waiters_.check("Event::wait_for");
  if (set_) return true;
  return waiters_.wait_until(internal::deadline_after(timeout), "Event::wait_for");
}

}  // namespace fiberloop
