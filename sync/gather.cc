#include "sync/gather.h"

#include <stdexcept>
#include <string>

namespace fiberloop::internal {

FiberRecord* record_or_throw(FiberRecord* f, const char* what) {
  if (f == nullptr) {
    throw std::logic_error(std::string(what) + ": a Task is empty (moved from or detached)");
  }
  if (f->joined) {
    throw std::logic_error(std::string(what) + ": " + describe_fiber(*f) + " was already joined");
  }
  return f;
}

std::size_t wait_any(std::span<FiberRecord* const> fibers, std::span<DoneWaiter> waiters) {
  if (fibers.empty()) {
    throw std::invalid_argument("wait_any: no tasks to wait for (the vector is empty)");
  }
  for (FiberRecord* f : fibers) {
    if (f->scheduler != nullptr) f->scheduler->check_thread("wait_any");
  }
  std::size_t earliest = DoneWaiter::kNone;
  for (std::size_t i = 0; i < fibers.size(); ++i) {
    if (fibers[i]->finished() &&
        (earliest == DoneWaiter::kNone || fibers[i]->finish_seq < fibers[earliest]->finish_seq)) {
      earliest = i;
    }
  }
  if (earliest != DoneWaiter::kNone) return earliest;

  FiberRecord& self = running_fiber_or_throw("wait_any");
  std::size_t winner = DoneWaiter::kNone;
  for (std::size_t i = 0; i < fibers.size(); ++i) {
    waiters[i].fiber = &self;
    waiters[i].index = i;
    waiters[i].winner = &winner;
    fibers[i]->done_waiters.push_back(waiters[i]);
  }
  struct Unlink {  // every waiter leaves its list, whatever ends the wait
    std::span<DoneWaiter> waiters;
    ~Unlink() {
      for (DoneWaiter& w : waiters) w.unlink();
    }
  } unlink{waiters.first(fibers.size())};
  self.scheduler->park(WaitKind::kJoin);
  return winner;
}

std::size_t wait_all(std::span<FiberRecord* const> fibers) {
  try {
    for (FiberRecord* f : fibers) Scheduler::wait_for_finish(*f);
  } catch (...) {
    for (FiberRecord* f : fibers) {
      if (!f->finished()) f->scheduler->cancel(*f);
    }
    throw;
  }
  std::size_t first = DoneWaiter::kNone;
  for (std::size_t i = 0; i < fibers.size(); ++i) {
    if (fibers[i]->error &&
        (first == DoneWaiter::kNone || fibers[i]->finish_seq < fibers[first]->finish_seq)) {
      first = i;
    }
  }
  return first;
}

void rethrow_failure(FiberRecord& failed) {
  failed.joined = true;  // observed here: not reported again when its Task drops
  std::rethrow_exception(failed.error);
}

}  // namespace fiberloop::internal
