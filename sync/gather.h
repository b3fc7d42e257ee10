// Waiting on several tasks at once: gather (all of them), wait_any (the
// first), as_completed (each, in the order they finish).
//
//   auto [a, b] = fiberloop::gather(t1, t2);      // both values, or the first failure
//   std::size_t first = fiberloop::wait_any(t1, t2);
//   for (std::size_t i : fiberloop::as_completed(tasks)) use(tasks[i].join());
#pragma once

#include <array>
#include <cstddef>
#include <exception>
#include <span>
#include <tuple>
#include <type_traits>
#include <variant>
#include <vector>

#include "fiber/generator.h"
#include "loop/internal/scheduler.h"
#include "loop/task.h"

namespace fiberloop {

// What gather() returns for a Task<T>: T, or std::monostate for void.
template <class T>
using GatherValue = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

namespace internal {

// Parks until one of `fibers` has finished; returns the index of the first
// to finish (of those already finished, the earliest).
std::size_t wait_any(std::span<FiberRecord* const> fibers, std::span<DoneWaiter> waiters);

// Parks until all of `fibers` have finished; if the caller is interrupted
// meanwhile, cancels those still running and rethrows. Returns: the index of
// the first to finish with an exception, or DoneWaiter::kNone.
std::size_t wait_all(std::span<FiberRecord* const> fibers);

template <class T>
GatherValue<T> take(Task<T>& task) {
  if constexpr (std::is_void_v<T>) {
    task.join();
    return {};
  } else {
    return task.join();
  }
}

// Rethrows the failure of `fibers[failed]`, having marked that outcome observed.
[[noreturn]] void rethrow_failure(FiberRecord& failed);

FiberRecord* record_or_throw(FiberRecord* f, const char* what);

}  // namespace internal

// Waits for every task to finish and returns their values, in order. The
// tasks may run on any loop (LoopGroup::spawn_on); a plain thread blocks. If
// any failed, rethrows the exception of the first to fail, once all have
// finished (this loop's tasks first, by when they finished; then other
// loops' tasks, by argument order, since when those finished is not
// known); the other
// failures stay with their Tasks (join them, or the loop's exception
// handler reports them when the Tasks are dropped). If the caller is
// cancelled (or times out) while waiting, the tasks still running are
// cancelled, on their own loops (asyncio.gather cancels its children too).
// Throws: the first failure; Cancelled; TimeoutError; std::logic_error on an
//         empty or already joined Task, or on a loop's thread outside a fiber
//         with a task of another loop (checked before any wait).
template <class... T>
std::tuple<GatherValue<T>...> gather(Task<T>&... tasks) {
  const std::array<internal::FiberRecord*, sizeof...(T)> fibers{
      internal::record_or_throw(internal::TaskAccess::record(tasks), "gather")...};
  const std::size_t failed = internal::wait_all(fibers);
  if (failed != internal::DoneWaiter::kNone) internal::rethrow_failure(*fibers[failed]);
  return std::tuple<GatherValue<T>...>{internal::take(tasks)...};
}

// gather() over a vector of tasks of one type.
template <class T>
std::vector<GatherValue<T>> gather(std::vector<Task<T>>& tasks) {
  std::vector<internal::FiberRecord*> fibers;
  fibers.reserve(tasks.size());
  for (auto& t : tasks)
    fibers.push_back(internal::record_or_throw(internal::TaskAccess::record(t), "gather"));
  const std::size_t failed = internal::wait_all(fibers);
  if (failed != internal::DoneWaiter::kNone) internal::rethrow_failure(*fibers[failed]);
  std::vector<GatherValue<T>> values;
  values.reserve(tasks.size());
  for (auto& t : tasks) values.push_back(internal::take(t));
  return values;
}

// Parks until one of the tasks has finished (returned, thrown or been
// cancelled); returns its index. Observes nothing: join the task for its
// outcome.
// Throws: Cancelled; TimeoutError; std::logic_error on an empty Task, a
//         Task of another loop, or outside a fiber.
template <class... T>
std::size_t wait_any(Task<T>&... tasks) {
  static_assert(sizeof...(T) > 0, "wait_any needs at least one task");
  const std::array<internal::FiberRecord*, sizeof...(T)> fibers{
      internal::record_or_throw(internal::TaskAccess::record(tasks), "wait_any")...};
  std::array<internal::DoneWaiter, sizeof...(T)> waiters;
  return internal::wait_any(fibers, waiters);
}

// As above, for any number of tasks of one type.
// Throws: as above; std::invalid_argument if `tasks` is empty (nothing could
//         ever finish).
template <class T>
std::size_t wait_any(std::vector<Task<T>>& tasks) {
  std::vector<internal::FiberRecord*> fibers;
  for (auto& t : tasks)
    fibers.push_back(internal::record_or_throw(internal::TaskAccess::record(t), "wait_any"));
  std::vector<internal::DoneWaiter> waiters(fibers.size());
  return internal::wait_any(fibers, waiters);
}

// The indices of `tasks`, in the order the tasks finish, as a generator: it
// parks the consuming fiber until the next one finishes. `tasks` must outlive
// the generator (it holds a reference). An empty vector yields nothing.
// Throws (from next()): Cancelled; TimeoutError; std::logic_error on an empty
//         or already joined Task, a Task of another loop, or outside a fiber.
template <class T>
Generator<std::size_t> as_completed(std::vector<Task<T>>& tasks) {
  return Generator<std::size_t>([&tasks](Generator<std::size_t>::Context& co) {
    std::vector<internal::FiberRecord*> left;
    std::vector<std::size_t> index;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      left.push_back(
          internal::record_or_throw(internal::TaskAccess::record(tasks[i]), "as_completed"));
      index.push_back(i);
    }
    std::vector<internal::DoneWaiter> waiters(left.size());
    while (!left.empty()) {
      const std::size_t k = internal::wait_any(left, std::span(waiters).first(left.size()));
      co.yield(index[k]);
      left.erase(left.begin() + static_cast<std::ptrdiff_t>(k));
      index.erase(index.begin() + static_cast<std::ptrdiff_t>(k));
    }
  });
}

}  // namespace fiberloop
