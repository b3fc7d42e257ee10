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
    const Scheduler* const home = loop_of(*f).load(std::memory_order_acquire);
    if (home != nullptr && home != Scheduler::current()) {
      throw std::logic_error("wait_any: " + describe_fiber(*f) +
                             " runs on another loop; wait_any and as_completed take tasks of "
                             "the caller's loop (gather and Task::join take tasks of any loop)");
    }
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

namespace {

// Waits until `f`, a task of another loop, has finished (a fiber parks, a
// plain thread blocks). Throws: what interrupted the wait; std::logic_error
// if the task was abandoned by its loop's shutdown.
void wait_elsewhere(FiberRecord& f) {
  if (!Scheduler::wait_done_until(f, kNever)) {
    FiberRecord& self = running_fiber_or_throw("gather");
    self.scheduler->deliver_interrupt(self);  // what woke us
    throw std::logic_error("gather: woken before " + describe_fiber(f) + " finished");
  }
  if (f.state == FiberState::kAbandoned) {
    throw std::logic_error("gather: " + describe_fiber(f) +
                           " was abandoned when its loop shut down; it has no outcome");
  }
}

bool local(FiberRecord& f) noexcept {
  const Scheduler* const home = loop_of(f).load(std::memory_order_acquire);
  return home == nullptr || home == Scheduler::current();
}

}  // namespace

std::size_t wait_all(std::span<FiberRecord* const> fibers) {
  const Scheduler* here = Scheduler::current();
  if (here != nullptr && here->running() == nullptr) {  // checked before any wait
    for (FiberRecord* f : fibers) {
      if (!local(*f)) {
        throw std::logic_error("gather: " + describe_fiber(*f) +
                               " runs on another loop, and waiting for it on this loop's "
                               "thread outside any fiber would block this loop; gather from "
                               "a fiber");
      }
    }
  }
  try {
    for (FiberRecord* f : fibers) {
      if (local(*f)) {
        Scheduler::wait_for_finish(*f);
      } else {
        wait_elsewhere(*f);
      }
    }
  } catch (...) {
    for (FiberRecord* f : fibers) {
      if (f->done_flag.load(std::memory_order_acquire)) continue;
      try {
        Scheduler::cancel_task(*f);  // through its loop's queue if it is another's
      } catch (...) {  // out of memory for the post: it runs on, as a dropped Task's would
      }
    }
    throw;
  }
  // The first to fail: of this loop's tasks, the first to finish failing;
  // if none of them failed, the first failed task of another loop in
  // argument order (when tasks of different loops finished is not known).
  std::size_t first = DoneWaiter::kNone;
  std::size_t first_elsewhere = DoneWaiter::kNone;
  for (std::size_t i = 0; i < fibers.size(); ++i) {
    if (!fibers[i]->error) continue;
    if (!local(*fibers[i])) {
      if (first_elsewhere == DoneWaiter::kNone) first_elsewhere = i;
    } else if (first == DoneWaiter::kNone || fibers[i]->finish_seq < fibers[first]->finish_seq) {
      first = i;
    }
  }
  return first != DoneWaiter::kNone ? first : first_elsewhere;
}

void rethrow_failure(FiberRecord& failed) {
  failed.joined = true;  // observed here: not reported again when its Task drops
  std::rethrow_exception(failed.error);
}

}  // namespace fiberloop::internal
