// Task<T>: the handle to a spawned fiber, through which its result comes back.
//
//   fiberloop::Task<int> t = fiberloop::spawn([] { return 6 * 7; });
//   int v = t.join();   // 42, or rethrows what the fiber threw
#pragma once

#include <stdexcept>
#include <type_traits>
#include <utility>

#include "loop/internal/fiber_record.h"
#include "loop/internal/scheduler.h"
#include "loop/options.h"

namespace fiberloop {
template <class T>
class Task;
namespace internal {
// A Task's record, for fiberloop's own code (gather, TaskGroup): not part of
// Task's public interface.
struct TaskAccess {
  template <class T>
  static FiberRecord* record(const Task<T>& task) noexcept {
    return task.fiber_;
  }
};
}  // namespace internal

// Move-only. Dropping a Task detaches its fiber: it runs on, and a failure
// nobody joins goes to the loop's exception handler.
template <class T>
class Task {
 public:
  Task() noexcept = default;
  Task(Task&& other) noexcept : fiber_(std::exchange(other.fiber_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      fiber_ = std::exchange(other.fiber_, nullptr);
    }
    return *this;
  }
  ~Task() { reset(); }

  // Waits until the fiber finishes; returns its value or rethrows its
  // exception. Returns at once if it already finished. Any thread: a fiber
  // (of any loop) parks; a plain thread blocks; on the fiber's own loop's
  // thread outside any fiber, the loop runs until the fiber finishes.
  // Throws: the fiber's exception (Cancelled if it was cancelled); Cancelled if
  //         the caller is cancelled while waiting, TimeoutError if its
  //         with_timeout() expires meanwhile; std::logic_error on a second
  //         join, a join of an empty or detached Task, a fiber joining itself,
  //         or a join that must wait on another loop's thread outside a fiber,
  //         and of a fiber its loop's shutdown abandoned (it has no outcome);
  //         std::runtime_error if, run from outside a fiber, the loop stops or
  //         deadlocks first.
  // Inline: the park is then in the caller's frame, with no function return
  // above the switch to mispredict at resumption (fiber/internal/context.h).
  [[gnu::always_inline]] T join() {
    internal::Scheduler::join(fiber("join"));
    if constexpr (!std::is_void_v<T>) return fiber_->result.template take<T>();
  }
  // True once the fiber has finished (returned, thrown, or been cancelled).
  // Also true for an empty Task (default-made, moved from, or detached),
  // which has no fiber to wait for: join() and cancel() on it throw
  // std::logic_error. Any thread.
  bool done() const noexcept {
    return fiber_ == nullptr || fiber_->done_flag.load(std::memory_order_acquire);
  }
  // Requests cancellation: Cancelled is thrown in the fiber at its current or
  // next suspension point; a parked fiber wakes at once. A no-op once done.
  // Any thread (from another, it takes effect when the fiber's loop next
  // looks at its cross-thread queue).
  // Throws: std::logic_error on an empty Task.
  void cancel() { internal::Scheduler::cancel_task(fiber("cancel")); }
  // Lets the fiber run on unobserved; the Task becomes empty.
  void detach() noexcept { reset(); }

  // The fiber's id; 0 for an empty Task.
  FiberId id() const noexcept { return fiber_ != nullptr ? fiber_->id : 0; }

  // True unless empty (default-constructed, moved from, or detached).
  explicit operator bool() const noexcept { return fiber_ != nullptr; }

 private:
  friend class Loop;
  friend struct internal::TaskAccess;
  explicit Task(internal::FiberRecord* f) noexcept : fiber_(f) {}

  internal::FiberRecord& fiber(const char* what) const {
    if (fiber_ == nullptr) {
      throw std::logic_error(std::string("Task::") + what +
                             ": the Task is empty (moved from, detached, or default-made)");
    }
    return *fiber_;
  }
  void reset() noexcept {
    if (fiber_ != nullptr) internal::Scheduler::drop_task(*std::exchange(fiber_, nullptr));
  }

  internal::FiberRecord* fiber_ = nullptr;
};

}  // namespace fiberloop
