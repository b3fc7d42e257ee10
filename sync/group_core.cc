#include "sync/internal/group_core.h"

#include <stdexcept>
#include <string>

#include "loop/errors.h"

namespace fiberloop::internal {

GroupCore::GroupCore(const char* what, Errors errors)
    : loop_(current_loop(what)),
      scheduler_(*Scheduler::current()),
      owner_(running_fiber_or_throw(what)),
      owner_id_(owner_.id),
      errors_(errors) {}

void GroupCore::check_open(const char* op) const {
  scheduler_.check_thread(op);
  // While join() waits, children may still spawn siblings (Trio's and
  // asyncio's rule); once it has returned, or the group is cancelling, no.
  if (joined_ || cancelling_) {
    throw std::logic_error(
        std::string(op) +
        (joined_ ? ": the group has been joined" : ": the group is being cancelled") +
        "; spawn before join() returns, and before a failure or cancel()");
  }
}

void GroupCore::adopt(FiberRecord& child) {
  if (child.finished()) [[unlikely]] {  // spawned while the loop closes: ended before it ran
    observe(child);
    return;
  }
  Child* node = free_;
  if (node != nullptr) {
    free_ = reinterpret_cast<Child*>(node->record);
  } else {
    nodes_.push_back(std::make_unique<Child>());
    node = nodes_.back().get();
  }
  node->group = this;
  node->record = &child;
  node->on_done = &GroupCore::child_finished;
  child.done_waiters.push_back(*node);
  children_.push_back(*node);
  ++running_;
}

// On the loop, as the child finishes (ran or never started).
void GroupCore::child_finished(DoneWaiter& done) noexcept {
  auto& node = static_cast<Child&>(done);
  GroupCore& group = *node.group;
  FiberRecord& child = *node.record;
  static_cast<ListHook<ChildTag>&>(node).unlink();
  node.record = reinterpret_cast<FiberRecord*>(group.free_);
  group.free_ = &node;
  group.observe(child);
  if (--group.running_ == 0) {
    SyncGuard guard(group.idle_.home());
    group.idle_.notify_all(guard);
  }
}

void GroupCore::observe(FiberRecord& child) noexcept {
  if (!child.error || is_cancellation(child.error)) return;
  if (errors_ == Errors::kTake) {
    failed(std::move(child.error), child);  // the child's detached Task reports nothing
    child.error = nullptr;
  } else {
    failed(child.error, child);  // its Task rethrows it too
  }
}

void GroupCore::failed(std::exception_ptr error, const FiberRecord& child) noexcept {
  const FiberInfo who{child.id, child.name, child.spawned_at};
  if (first_error_) {
    scheduler_.report(error, who);  // after the first failure: reported, not lost
    return;
  }
  first_error_ = std::move(error);
  first_failed_ = who;
  cancel();  // the rest stop at their next suspension point
  // asyncio's TaskGroup: an owner still in its body (a server in accept(),
  // say) is cancelled too, so that it reaches join() or its scope's end
  // instead of going on as if nothing had failed.
  // A group on the heap may outlive its owner, whose record then serves
  // another fiber: the id tells.
  if (!joining_ && owner_.id == owner_id_ && !owner_.finished()) {
    scheduler_.cancel(owner_);
    cancelled_owner_ = true;
  }
}

void GroupCore::cancel() noexcept {
  cancelling_ = true;
  children_.for_each([this](Child& c) { scheduler_.cancel(*c.record); });
}

void GroupCore::join(const char* op) {
  scheduler_.check_thread(op);  // its state is its loop's, unlocked
  FiberRecord& self = running_fiber_or_throw(op);
  // The cancel a failure sent the owner (failed()), not delivered yet: if
  // it ends the wait, it stands for the failure (asyncio's TaskGroup raises
  // the children's errors, not CancelledError); if not, it is taken back
  // (asyncio's "uncancel"). A failure cancels no owner in join(), so this
  // is known now. (Cancels are not counted: one from elsewhere meanwhile
  // is taken for it.)
  const bool failure_cancel_pending = cancelled_owner_ && &self == &owner_ &&
                                      owner_.id == owner_id_ &&
                                      (owner_.pending & FiberRecord::kCancel) != 0;
  cancelled_owner_ = false;
  joining_ = true;
  try {
    wait_children(true, op);
  } catch (const Cancelled&) {  // the children go first
    cancel();
    wait_children(false, op);
    joined_ = true;
    if (first_error_) {
      if (failure_cancel_pending) std::rethrow_exception(first_error_);
      // A cancel from elsewhere goes on (a supervisor that stops this fiber
      // must see it); the failure is reported, not lost.
      report_first_error(std::string(" (its ") + op + " was cancelled)");
    }
    throw;
  } catch (...) {  // a timeout: the children go first
    cancel();
    wait_children(false, op);
    joined_ = true;
    if (first_error_) report_first_error(std::string(" (its ") + op + " timed out)");
    throw;
  }
  joined_ = true;
  if (failure_cancel_pending) owner_.pending &= static_cast<std::uint8_t>(~FiberRecord::kCancel);
  if (first_error_) std::rethrow_exception(first_error_);
}

void GroupCore::close(int exceptions_at_start, const char* name) noexcept {
  if (joined_) return;
  joining_ = true;  // waiting now: a failure no longer cancels the owner
  if (std::uncaught_exceptions() > exceptions_at_start) {
    cancel();  // leaving by an exception
  } else {
    try {  // the owner's cancel or expired with_timeout cancels the children
      wait_children(true, name);
    } catch (const Cancelled&) {
      cancel();
      // Delivered again at the next wait of the fiber it hit: the one in
      // this destructor, which need not be the owner (a group on the heap).
      if (FiberRecord* self = scheduler_.running()) scheduler_.cancel(*self);
    } catch (...) {  // a timeout: delivered again while its scope is open
      cancel();
    }
  }
  wait_children(false, name);
  joined_ = true;
  // Nobody can receive it now (the owner did not join).
  if (!first_error_) return;
  if (cancelled_owner_ && std::uncaught_exceptions() > exceptions_at_start) {
    // The owner left the scope with the Cancelled this failure sent it.
    report_first_error(std::string(" of a ") + name +
                       ", which cancelled the owner (with_task_group() and with_nursery() "
                       "throw such a failure to the owner instead of that Cancelled)");
  } else {
    report_first_error(std::string(" of a ") + name + " that was not joined");
  }
}

void GroupCore::report_first_error(const std::string& why) noexcept {
  FiberInfo who = first_failed_;
  who.name = (who.name.empty() ? std::string("a child") : who.name) + why;
  scheduler_.report(first_error_, who);
}

void GroupCore::wait_children(bool interruptible, const char* op) {
  SyncGuard guard(idle_.home());  // local: the group and its children share a loop
  while (running_ > 0) {
    if (interruptible) {
      idle_.wait(guard, kNever, op);
    } else {
      idle_.wait_uninterruptible(guard, op);
    }
  }
}

}  // namespace fiberloop::internal
