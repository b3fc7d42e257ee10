#include "sync/task_group.h"

#include <stdexcept>

namespace fiberloop {

TaskGroup::TaskGroup()
    : loop_(internal::current_loop("TaskGroup")),
      scheduler_(*internal::Scheduler::current()),
      exceptions_at_start_(std::uncaught_exceptions()) {
  internal::running_fiber_or_throw("TaskGroup");
}

TaskGroup::~TaskGroup() {
  if (joined_) return;
  if (std::uncaught_exceptions() > exceptions_at_start_) cancel();  // leaving by an exception
  wait_children(false);
  mark_observed();
  if (first_error_) {
    // Nobody can receive it now: report it rather than lose it.
    scheduler_.report(first_error_, FiberInfo{0, "TaskGroup (not joined)", {}});
  }
}

void TaskGroup::check_open() const {
  scheduler_.check_thread("TaskGroup::spawn");
  if (joining_) {
    throw std::logic_error(
        "TaskGroup::spawn: the group is joining (or joined); spawn before join()");
  }
}

void TaskGroup::join() {
  internal::running_fiber_or_throw("TaskGroup::join");
  joining_ = true;
  try {
    wait_children(true);
  } catch (...) {  // the owner was interrupted: the children go first
    cancel();
    wait_children(false);
    joined_ = true;
    mark_observed();
    throw;
  }
  joined_ = true;
  mark_observed();
  if (first_error_) std::rethrow_exception(first_error_);
}

void TaskGroup::cancel() noexcept {
  for (auto& child : children_) {
    internal::FiberRecord* f = child->record();
    if (!f->finished()) f->scheduler->cancel(*f);
  }
}

void TaskGroup::wait_children(bool interruptible) {
  internal::SyncGuard guard(idle_.home());  // local: the group and its children share a loop
  while (running_ > 0) {
    if (interruptible) {
      idle_.wait(guard, internal::kNever, "TaskGroup::join");
    } else {
      idle_.wait_uninterruptible(guard, "TaskGroup::join");
    }
  }
}

void TaskGroup::child_done() noexcept {
  if (--running_ == 0) {
    internal::SyncGuard guard(idle_.home());
    idle_.notify_all(guard);
  }
}

void TaskGroup::child_failed(std::exception_ptr error) noexcept {
  if (!first_error_) {
    first_error_ = error;
    cancel();  // the rest stop at their next suspension point
  } else {
    scheduler_.report(error, FiberInfo{0, "TaskGroup child (after the first failure)", {}});
  }
}

void TaskGroup::mark_observed() noexcept {
  // join() rethrew (or reported) what matters; the children's Tasks must
  // not report the same failures again when they are dropped.
  for (auto& child : children_) {
    internal::FiberRecord* f = child->record();
    if (f->finished() && f->error) f->joined = true;
  }
}

}  // namespace fiberloop
