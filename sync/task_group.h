// TaskGroup: structured concurrency (asyncio.TaskGroup, Trio's nursery). The
// group's fibers do not outlive it, and a failure is never silent.
//
//   fiberloop::TaskGroup group;
//   auto& a = group.spawn([] { return fetch("a"); });
//   auto& b = group.spawn([] { return fetch("b"); });
//   group.join();                 // both done, or the first failure rethrown
//   use(a.join(), b.join());
//
// The first child to fail cancels the others (and the owner, if it has not
// reached join() yet: asyncio's rule), and join() rethrows its exception
// (not the Cancelled it sent the owner, which join() takes back if it is
// still pending; a cancel from elsewhere while join() waits stays a
// Cancelled, and the failure goes to the exception handler); the other
// children's failures go to the loop's exception handler. An owner that
// the failure cancelled in its body leaves the group's scope with that
// Cancelled, the failure reported; with_task_group() (below) throws it the
// failure instead, as asyncio's `async with` does. Cancelling the
// fiber that owns the group while it waits in join() or in the destructor
// (or a with_timeout() expiring there, or an exception leaving the group's
// scope) cancels the children first.
// One loop: the children run on the loop of the fiber that owns the group,
// which alone may spawn into it and join it (LoopGroup::spawn_on and
// Task::join are for work on other loops). The group keeps each child's
// Task until the group ends (spawn() returns a reference to it): it is for a
// bounded set of children, not for a server's ever-growing set of
// connections (that is Nursery).
#pragma once

#include <concepts>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <source_location>
#include <type_traits>
#include <utility>

#include "loop/errors.h"
#include "loop/loop.h"
#include "sync/internal/group_body.h"
#include "sync/internal/group_core.h"

namespace fiberloop {

class TaskGroup {
 public:
  // Throws: std::logic_error outside a fiber.
  TaskGroup();
  // Joins: waits for every child. If an exception is leaving the scope, the
  // children are cancelled first. Failures it cannot rethrow go to the
  // exception handler.
  ~TaskGroup();
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  // Spawns `fn` as a child. The Task stays valid for the group's life; join
  // it for the value once group.join() returned.
  // A child may spawn siblings while the owner waits in join().
  // Throws: std::logic_error once join() has returned or the group is
  //         cancelling, or from another loop's thread.
  template <internal::Spawnable F>
  TaskFor<F>& spawn(F&& fn, std::source_location where = std::source_location::current()) {
    using R = std::invoke_result_t<std::decay_t<F>>;
    core_.check_open("TaskGroup::spawn");
    auto task = std::make_unique<Task<R>>(core_.loop().spawn(std::forward<F>(fn), where));
    Task<R>& ref = *task;
    children_.push_back(std::make_unique<Holder<R>>(std::move(task)));
    core_.adopt(*children_.back()->record());
    return ref;
  }

  // Any other arguments: see Loop::spawn.
  template <class... Args>
  requires(!internal::kValidSpawn<Args...>) auto& spawn(Args&&...) {
    internal::reject_spawn_arguments<Args...>();
    static Task<void> none;
    return none;
  }

  // Waits for every child. Rethrows the first failure (after all finished).
  // Throws: the first child's failure; Cancelled or TimeoutError if the owner
  //         is interrupted while waiting (the children are cancelled and
  //         waited for first); std::logic_error outside a fiber, or from
  //         another loop's thread.
  void join();

  // Cancels every child still running.
  void cancel() noexcept;

  // Children spawned so far (finished ones included).
  std::size_t size() const noexcept { return children_.size(); }

 private:
  struct HolderBase {
    virtual ~HolderBase() = default;
    virtual internal::FiberRecord* record() const noexcept = 0;
  };
  template <class R>
  struct Holder : HolderBase {
    explicit Holder(std::unique_ptr<Task<R>> t) : task(std::move(t)) {}
    internal::FiberRecord* record() const noexcept override {
      return internal::TaskAccess::record(*task);
    }
    std::unique_ptr<Task<R>> task;
  };
  void mark_observed() noexcept;
  friend struct internal::GroupAccess;

  internal::GroupCore core_;
  std::deque<std::unique_ptr<HolderBase>> children_;
  int exceptions_at_start_;
};

// asyncio's `async with asyncio.TaskGroup() as tg:` as a call: runs
// body(group) on a new TaskGroup, joins it, and returns what body returns.
// Unlike a TaskGroup object, if a child fails while body waits (the group
// cancels body, asyncio's rule), the Cancelled that ends body is replaced
// by the child's failure, as asyncio raises it from the `async with`:
//
//   auto [a, b] = fiberloop::with_task_group([](fiberloop::TaskGroup& g) {
//     auto& a = g.spawn([] { return fetch("a"); });
//     auto& b = g.spawn([] { return fetch("b"); });
//     g.join();
//     return std::pair(a.join(), b.join());
//   });
//
// Throws: the first child's failure; what body throws otherwise (the
//         children cancelled and waited for first); Cancelled or
//         TimeoutError from elsewhere; std::logic_error outside a fiber.
template <class Body>
requires std::invocable<Body&, TaskGroup&> std::invoke_result_t<Body&, TaskGroup&> with_task_group(
    Body&& body) {
  TaskGroup group;
  return internal::run_group_body(group, body);
}

}  // namespace fiberloop
