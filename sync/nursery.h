// Nursery: structured concurrency for a server's connections (Trio's
// nursery, Go's errgroup). Like TaskGroup, its children do not outlive it
// and a failure is never silent; unlike TaskGroup, it keeps nothing of a
// child once the child finishes, so one Nursery can hold every connection a
// server ever accepts, with memory that follows how many run at once.
//
//   fiberloop::Nursery connections;
//   for (;;) {
//     connections.spawn([conn = listener.accept()]() mutable { serve(conn); });
//   }
//
// The first child to fail cancels the others, and join() rethrows its
// exception; the other children's failures go to the loop's exception
// handler. A child that is cancelled has not failed. If the owner is not yet
// in join() (a server still accepting), it is cancelled too, as asyncio's
// TaskGroup does: that Cancelled leaves the nursery's scope and the failure
// is reported naming the child, or, through with_nursery() (below), the
// failure itself is thrown to the owner. So a
// server's connection handler catches what one connection may end with (a
// peer's reset, a deadline, a TLS error) and lets only real bugs escape.
// join() rethrows the failure, not the Cancelled it sent the owner (a
// cancel from elsewhere while join() waits stays a Cancelled; the failure
// then goes to the exception handler).
// Cancelling the fiber that owns the nursery while it waits in join() or in
// the destructor (or a with_timeout() expiring there, or an exception
// leaving the nursery's scope) cancels the children first. One loop: the
// children run on the loop of the fiber that owns the nursery, which alone
// may spawn into it and join it. Children return nothing the nursery keeps:
// what a connection produces, it sends somewhere itself.
#pragma once

#include <concepts>
#include <cstddef>
#include <exception>
#include <source_location>
#include <type_traits>
#include <utility>

#include "loop/loop.h"
#include "sync/internal/group_body.h"
#include "sync/internal/group_core.h"

namespace fiberloop {

class Nursery {
 public:
  // Throws: std::logic_error outside a fiber.
  Nursery() : core_("Nursery", internal::GroupCore::Errors::kTake) {}
  // Joins: waits for every child. If an exception is leaving the scope, the
  // children are cancelled first. A failure it cannot rethrow goes to the
  // exception handler.
  ~Nursery() { core_.close(exceptions_at_start_, "Nursery"); }
  Nursery(const Nursery&) = delete;
  Nursery& operator=(const Nursery&) = delete;

  // Spawns `fn` as a child; its result, if any, is dropped.
  // A child may spawn siblings while the owner waits in join().
  // Throws: std::logic_error once join() has returned or the nursery is
  //         cancelling, or from another loop's thread; what Loop::spawn
  //         throws.
  template <internal::Spawnable F>
  void spawn(F&& fn, std::source_location where = std::source_location::current()) {
    core_.check_open("Nursery::spawn");
    auto task = core_.loop().spawn(std::forward<F>(fn), where);
    core_.adopt(*internal::TaskAccess::record(task));
    task.detach();  // the nursery watches it; nothing else holds it
  }
  // Any other arguments: see Loop::spawn.
  template <class... Args>
  requires(!internal::kValidSpawn<Args...>) auto spawn(Args&&...) {
    internal::reject_spawn_arguments<Args...>();
  }

  // Waits for every child. Rethrows the first failure (after all finished).
  // Throws: the first child's failure; Cancelled or TimeoutError if the owner
  //         is interrupted while waiting (the children are cancelled and
  //         waited for first); std::logic_error outside a fiber.
  void join() { core_.join("Nursery::join"); }
  // Cancels every child still running.
  void cancel() noexcept { core_.cancel(); }
  // Children running now (spawned and not finished).
  std::size_t running() const noexcept { return core_.running(); }

 private:
  friend struct internal::GroupAccess;

  internal::GroupCore core_;
  int exceptions_at_start_ = std::uncaught_exceptions();
};

// Trio's `async with trio.open_nursery() as nursery:` as a call: runs
// body(nursery) on a new Nursery, joins it, and returns what body returns.
// If a child fails while body waits (a server in accept()), the nursery
// cancels body, and the Cancelled that ends it is replaced by the child's
// failure, as Trio and asyncio raise it from the `async with` (a Nursery
// object can only let that Cancelled leave its scope):
//
//   fiberloop::with_nursery([&](fiberloop::Nursery& connections) {
//     for (;;) connections.spawn([c = listener.accept()]() mutable { serve(c); });
//   });
//
// Throws: the first child's failure; what body throws otherwise (the
//         children cancelled and waited for first); Cancelled or
//         TimeoutError from elsewhere; std::logic_error outside a fiber.
template <class Body>
requires std::invocable<Body&, Nursery&> std::invoke_result_t<Body&, Nursery&> with_nursery(
    Body&& body) {
  Nursery nursery;
  return internal::run_group_body(nursery, body);
}

}  // namespace fiberloop
