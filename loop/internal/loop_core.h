// The scheduler behind Loop: fibers, the ready queue, the switch protocol.
// Public types (Loop, Task, this_fiber) are thin layers over it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <source_location>
#include <string>
#include <unordered_map>
#include <vector>

#include "loop/internal/callback_table.h"
#include "loop/internal/fiber_record.h"
#include "loop/internal/intrusive_list.h"
#include "loop/internal/poller.h"
#include "loop/internal/ready_queue.h"
#include "loop/internal/record_pool.h"
#include "loop/internal/relaxed_counter.h"
#include "loop/internal/thread_pool.h"
#include "loop/internal/timer_heap.h"
#include "loop/options.h"
#include "loop/timer_handle.h"

namespace fiberloop {
class Loop;
}

namespace fiberloop::internal {

using ExceptionHandler = std::function<void(std::exception_ptr, const FiberInfo&)>;
class StallWatchdog;

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
  // Cancelled when cancelled first. `detail` says exactly what for, in
  // Loop::dump() (see FiberRecord::wait_detail).
  void park(WaitKind kind = WaitKind::kOther, std::int64_t detail = 0);
  // As park(), but never throws: an interrupt stays pending (delivered at the
  // next suspension point). Returns true if woken by wake(), false if by an
  // interrupt (which unlinked the fiber from its wait list).
  bool park_masked(WaitKind kind = WaitKind::kOther) noexcept;
  // Makes a parked fiber ready (a notifier's wake: park() returns normally).
  // The caller has unlinked it from its wait list. A no-op for others.
  void wake(FiberRecord& f) noexcept;
  // Requests cancellation; a parked fiber leaves its wait list and wakes.
  void cancel(FiberRecord& f) noexcept;
  // Sets an interrupt bit (FiberRecord::kCancel, kTimeout) on `f`; a parked
  // fiber leaves its wait list and wakes to take it.
  void interrupt(FiberRecord& f, std::uint8_t bit) noexcept;

  // ---- time (loop/time.cc) ----
  // Parks the running fiber until `when`.
  // Throws: Cancelled, TimeoutError; std::logic_error outside a fiber.
  void sleep_until(TimePoint when);
  TimerHandle call_soon(std::function<void()> fn);
  TimerHandle call_at(TimePoint when, std::function<void()> fn);
  // Any thread: queues `fn` and wakes the loop if it is blocked in epoll.
  void call_soon_threadsafe(std::function<void()> fn);
  // Callbacks are cancelled through their table (see TimerHandle).
  static void cancel_callback(CallbackTable& table, std::uint32_t slot, std::uint32_t generation);
  // Timers for nodes the caller owns (sleeps, timeouts).
  void add_timer(TimerNode& node, TimePoint when) { timers_.push(node, when); }
  void remove_timer(TimerNode& node) noexcept { timers_.remove(node); }
  // run_blocking(): runs `job` on a worker thread; the loop counts it as
  // work in progress until finish_blocking() (on the loop thread).
  void submit_blocking(std::function<void()> job);
  void finish_blocking() noexcept { --jobs_outstanding_; }
  // Loop::add_reader / add_writer (loop/fd_watch.cc). `fn` null removes.
  // Returns: whether a callback was registered before.
  bool set_fd_callback(int fd, bool write, std::function<void()> fn);

  // Loop::KeepAlive: any thread. Dropping the last one wakes the loop so that
  // a run() with nothing else to do can return.
  void add_keep_alive() noexcept { keep_alives_.fetch_add(1, std::memory_order_relaxed); }
  void drop_keep_alive() noexcept {
    keep_alives_.fetch_sub(1, std::memory_order_relaxed);
    notify_remote();
  }
  // Fibers parked on fd readiness keep the loop polling every iteration.
  void add_fd_waiter() noexcept { ++fd_waiters_; }
  void remove_fd_waiter() noexcept { --fd_waiters_; }

  // Waits until `f` finishes, marks its outcome observed, rethrows its error.
  // From a fiber: parks. From outside any fiber: runs the loop until then.
  // Works after the loop is gone, for a fiber that finished before.
  static void join(FiberRecord& f);
  // Waits until `f` finishes, without observing its outcome.
  static void wait_for_finish(FiberRecord& f) {
    if (!f.finished()) f.loop->wait_finished(f);
  }
  // Drops a Task's hold on `f`: detaches it if still running, reports an
  // unobserved failure if it finished with one.
  static void drop_task(FiberRecord& f) noexcept;

  // Runs until nothing can make progress, or stop().
  void run();
  // Requests that run() return after the current iteration. Any thread.
  void stop() noexcept;
  // Registers an fd with the loop's epoll instance (io/ uses it).
  Poller& poller() noexcept { return poller_; }
  // Closes the loop (loop/shutdown.cc): drops pending callbacks and timers,
  // cancels every live fiber, and runs them, for a bounded number of
  // iterations, until they have unwound; fibers that will not end are
  // reported and abandoned.
  void shutdown() noexcept;
  // Whether shutdown() has begun. Callbacks scheduled from then on are
  // destroyed without running, fibers spawned are cancelled before they run.
  bool closing() const noexcept { return closing_; }

  void set_exception_handler(ExceptionHandler handler);
  // Loop::dump: every fiber, its state and what it waits on, and the counters.
  void dump(std::ostream& out) const;
  std::size_t stack_high_water() const;
  // Hands a failure nobody can receive to the exception handler.
  void report(std::exception_ptr error, const FiberInfo& info) noexcept;
  LoopStats stats() const noexcept;

  // ---- debugging from outside the loop (loop/stall_watchdog.cc, loop/dump.cc) ----
  // Moves whenever the loop makes progress: switches, iterations, callbacks.
  // Any thread.
  std::uint64_t heartbeat() const noexcept {
    return switches_.get() + iterations_.get() + callbacks_run_.get();
  }
  // True unless run() is on the stack and the loop is not blocked in epoll:
  // a loop that is idle, or not running, is not stalled. Any thread.
  bool resting() const noexcept {
    return !active_.load(std::memory_order_relaxed) || polling_.load(std::memory_order_relaxed);
  }
  // The watchdog asks the loop thread to report a stall of `so_far`, seen
  // at heartbeat `beat` (the report is dropped if the loop moved since).
  void request_stall_report(Duration so_far, std::uint64_t beat) noexcept;
  // The loop thread's signal handler: prints what is stalled and the
  // thread's backtrace to stderr, if the watchdog asked. Async-signal-safe
  // as far as glibc's backtrace() is (primed when the watchdog starts).
  void report_stall_from_signal() noexcept;
  // Loop::dump_on_signal: a dump to stderr at the next iteration.
  // Async-signal-safe (atomics and an eventfd write).
  void request_dump() noexcept;

 private:
  [[noreturn]] static void throw_outside_fiber(const char* what);
  [[noreturn]] static void throw_wrong_thread(const char* what);
  [[noreturn]] static void throw_interrupt(FiberRecord& self);
  static void fiber_main(ContextEntry* entry) noexcept;
  static void release_ref(FiberRecord& f) noexcept;

  FiberRecord* pick_next() noexcept;
  void suspend(FiberRecord& self) noexcept;
  void resume_from_scheduler(FiberRecord& f) noexcept;
  [[noreturn]] void finish_running() noexcept;
  bool prepare_to_run(FiberRecord& f) noexcept;
  void mark_finished(FiberRecord& f) noexcept;
  void make_ready(FiberRecord& f) noexcept;
  // (ASan, TSan) The context `f` resumes on, as the sanitizers know it.
  static StackRange stack_of([[maybe_unused]] const FiberRecord& f) noexcept {
#if FIBERLOOP_SANITIZE_SWITCH
    return f.suspended_on;
#else
    return {};
#endif
  }
  void deliver_interrupt(FiberRecord& self);
  bool needs_scheduler() const noexcept;
  // Why run_scheduler() returned.
  enum class SchedulerExit { kTargetFinished, kStopped, kNothingToDo };
  SchedulerExit run_scheduler(FiberRecord* until);
  bool poll_and_expire();
  void take_remote();
  void run_callbacks();
  void notify_remote() noexcept;
  void discard_callbacks() noexcept;
  void drop_remote() noexcept;
  void abandon_remaining() noexcept;
  void finish_unstarted(FiberRecord& f, std::exception_ptr error) noexcept;
  // Interrupts wait while an exception unwinds the running fiber: thrown
  // out of a destructor, they would end the process (std::terminate).
  static bool may_interrupt() noexcept { return tls_exception_state->uncaught == 0; }
  static void report_failure(FiberRecord& f) noexcept;
  static void on_ready(const Readiness& r) noexcept { r.token->ready(r.token, r); }
  void wait_finished(FiberRecord& f);
  // The message of the runtime_error a join from outside any fiber throws
  // when nothing can make progress: every parked fiber and what it waits on.
  std::string deadlock_report(const std::string& awaited) const;
  void run_until_finished(FiberRecord& f);
  [[noreturn]] static void throw_joined_twice(const FiberRecord& f);
  [[noreturn]] static void throw_self_join(const FiberRecord& f);
  [[noreturn]] static void throw_abandoned(const FiberRecord& f);

  static constexpr std::size_t kContextAhead = 4;  // prefetch distances, measured
  static constexpr std::size_t kRecordAhead = 8;   // with 1M ready fibers
  // Iterations a closing loop runs before it abandons the fibers left.
  static constexpr std::size_t kShutdownIterations = 64;

  Loop& owner_;
  LoopOptions options_;
  StackPool& stacks_;
  RecordPool* records_;  // orphaned, not deleted, by ~LoopCore

  FiberRecord* current_ = nullptr;             // running fiber; null in the scheduler
  ContextHandle scheduler_context_ = nullptr;  // the thread's own stack, saved while a fiber runs
  ExceptionState scheduler_exceptions_;        // the scheduler's, saved while a fiber runs

  ReadyQueue ready_;
  std::size_t budget_ = 0;                        // fibers still to run in this iteration
  IntrusiveList<FiberRecord, AllFibersTag> all_;  // every fiber not yet finished
  bool in_scheduler_ = false;                     // run_scheduler() is on the stack
  FiberRecord* run_target_ = nullptr;             // run_scheduler() returns when it finishes
  bool attention_ = false;              // the scheduler must look before the next iteration
  bool closing_ = false;                // shutdown() has begun
  std::size_t closing_iterations_ = 0;  // iterations run since
  bool leaked_fibers_ = false;          // shutdown abandoned fibers that would not end
  ExceptionHandler exception_handler_;

  // Time and callbacks.
  TimerHeap timers_;
  Poller poller_;
  std::shared_ptr<CallbackTable> callbacks_;
  std::vector<std::uint32_t> soon_;     // callbacks due, in order
  std::vector<std::uint32_t> running_;  // the iteration's snapshot of soon_
  std::size_t fd_waiters_ = 0;          // fibers parked on fd readiness (io/), fd callbacks
  // How long the next wait for another thread's post lasts before the loop
  // looks again whether such a thread exists (see poll_and_expire).
  Duration other_thread_recheck_ = std::chrono::milliseconds(10);
  // The time at the last poll: what parking fibers stamp themselves with
  // (reading the clock at every park would cost more than the park).
  TimePoint coarse_now_ = Clock::now();
  // An fd with add_reader/add_writer callbacks. Shared callbacks: one
  // already queued survives its removal.
  struct FdWatch : ReadinessTarget {
    LoopCore* loop = nullptr;
    std::shared_ptr<std::function<void()>> on_read;
    std::shared_ptr<std::function<void()>> on_write;
  };
  std::unordered_map<int, std::unique_ptr<FdWatch>> fd_watches_;

  // Cross-thread: call_soon_threadsafe() and stop(). remote_pending_ and
  // polling_ pair up (Dekker): a writer wakes the poller only when the loop
  // is, or is about to be, blocked in epoll.
  std::mutex remote_mutex_;
  std::vector<std::function<void()>> remote_;
  std::atomic<bool> remote_pending_{false};
  std::atomic<bool> polling_{false};
  std::atomic<bool> stop_requested_{false};
  std::atomic<std::size_t> keep_alives_{0};
  StackRange scheduler_stack_;  // (ASan) the stack the scheduler runs on; cold: kept last

  FiberId next_id_ = 1;
  std::uint64_t created_ = 0;
  std::uint64_t finished_ = 0;
  RelaxedCounter switches_;
  RelaxedCounter iterations_;
  RelaxedCounter callbacks_run_;

  // Debugging: read by the stall watchdog and by signal handlers.
  std::atomic<bool> active_{false};       // run_scheduler() is on the stack
  std::atomic<bool> in_callback_{false};  // a call_soon/call_later callback runs
  std::atomic<bool> stall_report_requested_{false};
  std::atomic<std::int64_t> stall_so_far_ms_{0};
  std::atomic<std::uint64_t> stall_beat_{0};
  std::atomic<bool> dump_requested_{false};

  // run_blocking() workers; declared last, so destroyed (joined) first,
  // while what their jobs post to still exists.
  std::size_t jobs_outstanding_ = 0;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<StallWatchdog> watchdog_;  // with LoopOptions::stall_threshold; joined first

  // Every loop of the process, for debuggers (tools/gdb/fiberloop.py reads
  // it from live processes and core files alike; thread-locals are not
  // always readable from a core).
  friend void register_for_debuggers(LoopCore* core, bool add) noexcept;
  friend bool loop_is_live(const LoopCore* core) noexcept;
  LoopCore* debug_next_ = nullptr;
  long debug_lwp_ = 0;  // the loop thread's kernel id (gettid)
};

// Whether `core` is a loop that exists now (on any thread).
bool loop_is_live(const LoopCore* core) noexcept;

// The head of the list of every loop (LoopCore::debug_next_), for debuggers.
extern LoopCore* debug_loop_list;
// Adds `core` to that list, or removes it.
void register_for_debuggers(LoopCore* core, bool add) noexcept;

// Stops Loop::dump_on_signal() dumps of `core` (its Loop is going away).
void forget_dump_signal(LoopCore& core) noexcept;

// "fiber 7 'name'" (the name only if it has one): how every message names a fiber.
std::string describe_fiber(const FiberRecord& f);
// One line of Loop::dump() for `f`: its state, what it waits on and for how
// long, its stack and where it was spawned.
void describe_fiber_line(std::ostream& out, const FiberRecord& f, TimePoint now);

// Throws std::logic_error: `what` was called with no Loop on this thread.
[[noreturn]] void throw_no_loop(const char* what);

// This thread's Loop. Throws std::logic_error naming `what` if there is none.
Loop& current_loop(const char* what);

// Runs inside a fiber before its body: throws Cancelled if it was cancelled
// before it first ran.
void enter_body(FiberRecord& f);

// Throws std::logic_error unless called from a fiber: `what` needs one.
FiberRecord& running_fiber_or_throw(const char* what);

}  // namespace fiberloop::internal

#include "loop/internal/switch_path.h"  // IWYU pragma: export
