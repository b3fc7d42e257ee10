#include "sync/task_group.h"

namespace fiberloop {

TaskGroup::TaskGroup()
    : core_("TaskGroup", internal::GroupCore::Errors::kCopy),
      exceptions_at_start_(std::uncaught_exceptions()) {}

TaskGroup::~TaskGroup() {
  const bool joined = core_.joined();
  core_.close(exceptions_at_start_, "TaskGroup");
  if (!joined) mark_observed();
}

void TaskGroup::join() {
  core_.check_thread("TaskGroup::join");  // before Observe: it reads the children
  struct Observe {
    TaskGroup* group;
    ~Observe() { group->mark_observed(); }
  } observe{this};
  core_.join("TaskGroup::join");
}

void TaskGroup::cancel() noexcept { core_.cancel(); }

void TaskGroup::mark_observed() noexcept {
  // join() rethrew (or reported) what matters; the children's Tasks must
  // not report the same failures again when they are dropped.
  for (auto& child : children_) {
    internal::FiberRecord* f = child->record();
    if (f->finished() && f->error) f->joined = true;
  }
}

}  // namespace fiberloop
