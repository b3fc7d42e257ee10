// The scheduler behind Loop: fibers, the ready queue, the switch protocol.
// Public types (Loop, Task, this_fiber) are thin layers over it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <source_location>

#include "loop/internal/fiber_record.h"
#include "loop/internal/intrusive_list.h"
#include "loop/internal/ready_queue.h"
#include "loop/internal/record_pool.h"
#include "loop/options.h"

namespace fiberloop {
class Loop;
}

namespace fiberloop::internal {

using ExceptionHandler = std::function<void(std::exception_ptr, const FiberInfo&)>;

class LoopCore {
 public:
  LoopCore(Loop& owner, const LoopOptions& options);
  ~LoopCore();
  LoopCore(const LoopCore&) = delete;
  LoopCore& operator=(const LoopCore&) = delete;

  // The loop created on the calling thread, or null.
  static LoopCore* current() noexcept;
  Loop& owner() noexcept { return owner_; }

  // Throws std::logic_error, naming `what`, unless called on this loop's thread.
  void check_thread(const char* what) const;

  // Spawning: create_fiber() takes a record and returns it with `callable`
  // pointing at room for the callable; the caller constructs it there and
  // calls start_fiber(), or discard_fiber() if the construction threw.
  FiberRecord* create_fiber(SpawnOptions&& options, std::size_t callable_bytes,
                            std::size_t callable_align, void (*body)(FiberRecord*, bool),
                            const std::source_location& where);
  void start_fiber(FiberRecord& f);
  void discard_fiber(FiberRecord& f) noexcept;

  // The fiber on the CPU, or null while the scheduler runs.
  FiberRecord* running() const noexcept { return current_; }
  // Throws std::logic_error, naming `what`, unless called from a fiber of this loop.
  FiberRecord& running_fiber(const char* what);

  // To the back of the ready queue. Throws Cancelled.
  void yield();
  // Suspends the running fiber until wake() or cancel(). The caller has linked
  // it into the wait list it waits on (or none); on return or throw it is in
  // none. Returns normally when woken by wake(), even if a cancel arrived
  // after the wake (it is delivered at the next suspension point); throws
  // Cancelled when cancelled first.
  void park();
  // Makes a parked fiber ready (a notifier's wake: park() returns normally).
  // The caller has unlinked it from its wait list. A no-op for others.
  void wake(FiberRecord& f) noexcept;
  // Requests cancellation; a parked fiber leaves its wait list and wakes.
  void cancel(FiberRecord& f) noexcept;

  // Waits until `f` finishes, marks its outcome observed, rethrows its error.
  // From a fiber: parks. From outside any fiber: runs the loop until then.
  // Works after the loop is gone, for a fiber that finished before.
  static void join(FiberRecord& f);
  // Drops a Task's hold on `f`: detaches it if still running, reports an
  // unobserved failure if it finished with one.
  static void drop_task(FiberRecord& f) noexcept;

  // Runs until nothing can make progress, or stop().
  void run();
  // Requests that run() return after the current iteration. Any thread.
  void stop() noexcept;
  // Cancels every live fiber and runs them until they have unwound.
  void shutdown() noexcept;

  void set_exception_handler(ExceptionHandler handler);
  LoopStats stats() const noexcept;
  const LoopOptions& options() const noexcept { return options_; }

 private:
  [[noreturn]] static void throw_outside_fiber(const char* what);
  [[noreturn]] static void throw_wrong_thread(const char* what);
  [[noreturn]] static void throw_cancelled(FiberRecord& self);
  static void fiber_main(ContextEntry* entry) noexcept;
  static void release_ref(FiberRecord& f) noexcept;

  FiberRecord* pick_next() noexcept;
  void suspend(FiberRecord& self) noexcept;
  void resume_from_scheduler(FiberRecord& f) noexcept;
  [[noreturn]] void finish_running() noexcept;
  bool prepare_to_run(FiberRecord& f) noexcept;
  void mark_finished(FiberRecord& f) noexcept;
  void make_ready(FiberRecord& f) noexcept;
  void deliver_interrupt(FiberRecord& self);
  bool needs_scheduler() const noexcept;
  void run_scheduler(FiberRecord* until);
  void report_failure(FiberRecord& f) noexcept;
  void wait_finished(FiberRecord& f);
  void run_until_finished(FiberRecord& f);
  [[noreturn]] static void throw_joined_twice(const FiberRecord& f);
  [[noreturn]] static void throw_self_join(const FiberRecord& f);

  static constexpr std::size_t kContextAhead = 4;  // prefetch distances, measured
  static constexpr std::size_t kRecordAhead = 8;   // with 1M ready fibers

  Loop& owner_;
  LoopOptions options_;
  StackPool& stacks_;
  RecordPool* records_;  // orphaned, not deleted, by ~LoopCore

  FiberRecord* current_ = nullptr;             // running fiber; null in the scheduler
  ContextHandle scheduler_context_ = nullptr;  // the thread's own stack, saved while a fiber runs
  ReadyQueue ready_;
  std::size_t budget_ = 0;                        // fibers still to run in this iteration
  IntrusiveList<FiberRecord, AllFibersTag> all_;  // every fiber not yet finished
  bool in_scheduler_ = false;                     // run_scheduler() is on the stack
  FiberRecord* run_target_ = nullptr;             // run_scheduler() returns when it finishes
  bool attention_ = false;  // the scheduler must look before the next iteration
  std::atomic<bool> stop_requested_{false};
  ExceptionHandler exception_handler_;

  FiberId next_id_ = 1;
  std::uint64_t created_ = 0;
  std::uint64_t finished_ = 0;
  std::uint64_t switches_ = 0;
  std::uint64_t iterations_ = 0;
};

// Throws std::logic_error: `what` was called with no Loop on this thread.
[[noreturn]] void throw_no_loop(const char* what);

// This thread's Loop. Throws std::logic_error naming `what` if there is none.
Loop& current_loop(const char* what);

// Runs inside a fiber before its body: throws Cancelled if it was cancelled
// before it first ran.
void enter_body(FiberRecord& f);

}  // namespace fiberloop::internal

#include "loop/internal/switch_path.h"  // IWYU pragma: export
