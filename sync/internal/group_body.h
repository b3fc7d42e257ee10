// with_task_group() and with_nursery(): a group's scope as a call. Only a
// call can do what asyncio's `async with TaskGroup()` does when a child
// fails while the body waits: the group cancels the body, and the
// Cancelled that ends it is replaced by the child's failure. (A group's
// destructor cannot replace an exception leaving its scope.)
#pragma once

#include <exception>
#include <type_traits>

#include "loop/errors.h"
#include "sync/internal/group_core.h"

namespace fiberloop::internal {

// The core of a TaskGroup or a Nursery, for run_group_body.
struct GroupAccess {
  template <class Group>
  static GroupCore& core(Group& group) noexcept {
    return group.core_;
  }
};

// Runs body(group), then group.join(); returns what body returns. If body
// ends with the Cancelled that the group's first failure sent its owner,
// joins the group, which rethrows that failure. Any other exception from
// body leaves as it came, the group's destructor cancelling and waiting for
// the children first.
template <class Group, class Body>
std::invoke_result_t<Body&, Group&> run_group_body(Group& group, Body& body) {
  using R = std::invoke_result_t<Body&, Group&>;
  std::exception_ptr cancelled;
  try {
    // A body may join the group itself (and handle its failure): then it is
    // not joined again, which would rethrow that failure.
    if constexpr (std::is_void_v<R>) {
      body(group);
      if (!GroupAccess::core(group).joined()) group.join();
      return;
    } else {
      R result = body(group);
      if (!GroupAccess::core(group).joined()) group.join();
      return result;
    }
  } catch (const Cancelled&) {
    // A cancel from elsewhere at the same time is taken for the failure's,
    // as join() takes it (cancels are not counted).
    if (!GroupAccess::core(group).failure_cancelled_owner()) throw;
    cancelled = std::current_exception();
  }
  group.join();  // the children are cancelled already: waits, then rethrows the failure
  std::rethrow_exception(cancelled);  // not reached: a failure cancelled the owner
}

}  // namespace fiberloop::internal
