// The scheduler core of a loop: its fibers, its ready queue, and how a fiber
// parks and is woken. This is what sync/ and io/ build on. The rest of a loop
// (timers, reactor, callbacks and the cross-thread queue, blocking jobs,
// diagnostics) are components around it, private to loop/ (loop_parts.h).
// The switch path is inline, in switch_path.h, included at the end.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <source_location>
#include <vector>

#include "fiber/internal/check.h"
#include "fiber/internal/context.h"
#include "loop/internal/deadline.h"
#include "loop/internal/fiber_record.h"
#include "loop/internal/intrusive_list.h"
#include "loop/internal/ready_queue.h"
#include "loop/internal/timer_clock.h"
#include "loop/internal/timer_heap.h"
#include "loop/options.h"

namespace fiberloop {
class Loop;
}

namespace fiberloop::internal {

struct LoopParts;  // loop_parts.h, private to loop/
class Reactor;
class RecordPool;
class StackPool;
using ExceptionHandler = std::function<void(std::exception_ptr, const FiberInfo&)>;

// Whether `e` is a Cancelled (cancelling is not failing).
bool is_cancellation(const std::exception_ptr& e) noexcept;

class Scheduler {
 public:
  Scheduler(LoopParts& parts, Loop& owner, const LoopOptions& options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // The scheduler of the loop on this thread, or null.
  static Scheduler* current() noexcept;
  Loop& owner() noexcept { return owner_; }
  // A number no other loop of this process has had: it tells this loop from
  // an earlier one at the same address (an fd that outlived its loop).
  std::uint64_t serial() const noexcept { return serial_; }
  // The components around the core, for loop/'s own files (loop_parts.h).
  LoopParts& parts() noexcept;
  // The loop's reactor, for io/ (loop/internal/reactor.h).
  Reactor& reactor() noexcept;
  // The clock the loop's timers are looked at with (loop/internal/timer_clock.h).
  TimerClock& clock() noexcept { return clock_; }
  // Throws std::logic_error, naming `what`, unless called on this loop's thread.
  void check_thread(const char* what) const;
  // Whether the loop is shutting down: see loop/shutdown.cc.
  bool closing() const noexcept { return closing_; }
  // Whether other threads may post Task operations here (task_posts_mutex()
  // mutex held): until ~LoopParts stops taking them, before its last drain.
  bool takes_task_posts() const noexcept { return takes_task_posts_; }
  // (task_posts.h) ~LoopParts, before its last drain; ~Scheduler, after
  // it has orphaned the pools: null as the loop of every live record.
  void stop_taking_task_posts() noexcept;
  static void let_go_of_records(const std::vector<FiberRecord*>& live) noexcept;
  // While the loop closes, a fiber with a cancel to deliver goes once
  // through the ready queue before the cancel is thrown (timeout.cc).
  void pass_while_closing(FiberRecord& self) noexcept;
  // The same, for the running fiber of this thread's loop if it has such a
  // cancel, before it takes a shared primitive's lock (a no-op otherwise).
  static void pass_before_sync_lock() noexcept;

  // The fiber on the CPU, or null while the scheduler runs.
  FiberRecord* running() const noexcept { return current_; }
  // Throws std::logic_error, naming `what`, unless called from a fiber of this loop.
  FiberRecord& running_fiber(const char* what);

  // Spawning (Loop::spawn, from any thread): a record whose `callable`
  // points at room for the callable; construct it there, then start_fiber(),
  // or discard_fiber(). From another thread, start_fiber() queues the fiber
  // through the cross-thread queue.
  FiberRecord* create_fiber(SpawnOptions&& options, std::size_t callable_bytes,
                            std::size_t callable_align, void (*body)(FiberRecord*, bool),
                            const std::source_location& where);
  void start_fiber(FiberRecord& f);  // inline: switch_path.h
  void discard_fiber(FiberRecord& f) noexcept;

  // To the back of the ready queue. Throws Cancelled, TimeoutError.
  void yield();
  // Suspends the running fiber until wake() or an interrupt. The caller has
  // linked it into the wait list it waits on (or none). Returns when woken,
  // even if an interrupt came after the wake (it waits for the next
  // suspension point); throws Cancelled or TimeoutError when interrupted
  // first. `detail` is for Loop::dump().
  void park(WaitKind kind = WaitKind::kOther, std::int64_t detail = 0);
  // How park_waiter() ended.
  enum class ParkEnd : std::uint8_t { kWoken, kTimedOut, kInterrupted };
  // As park(), and also wakes at `deadline` (kNever: no deadline; one in the
  // past: at the next poll), but never throws: it says how the park ended,
  // and the caller, who may have been served meanwhile by another thread,
  // decides (sync/internal/waiters.h). The one timed park (Boost.Fiber's
  // wait_until): sleep, timed waits and select use it.
  ParkEnd park_waiter(TimePoint deadline, WaitKind kind, std::int64_t detail = 0);
  // park_waiter() for sleep: true if woken, false at the deadline; throws
  // Cancelled or TimeoutError when interrupted.
  bool park_until(TimePoint deadline, WaitKind kind, std::int64_t detail = 0);
  // As park(), but never throws: an interrupt stays pending for the next
  // suspension point. Returns true if woken by wake(), false by an interrupt.
  bool park_uninterruptible(WaitKind kind, std::int64_t detail = 0) noexcept;
  // Whether an interrupt is pending for `self` and may be delivered now: a
  // caller that parks again after park_waiter() ends otherwise (a timer of
  // its own) checks it first, since park_waiter() does not.
  static bool interrupt_due(const FiberRecord& self) noexcept {
    return self.pending != 0 && may_interrupt(self);
  }
  // Throws Cancelled or TimeoutError if one is pending for `self` and may
  // be delivered now (not while an exception unwinds it).
  void deliver_interrupt(FiberRecord& self);
  // Makes a parked fiber ready (park() returns normally). The caller has
  // unlinked it from its wait list. A no-op unless `f` is parked.
  void wake(FiberRecord& f) noexcept;
  // wake(f) from any thread, through this (f's) loop's cross-thread queue,
  // if `f` is still in the park numbered `park` (its park_seq then).
  void remote_wake(FiberRecord& f, std::uint32_t park) noexcept;
  // Queues `item` on this loop's cross-thread queue (any thread); the loop
  // handles it on its thread, even while closing.
  void post(RemoteItem& item) noexcept;
  // Handles what other threads have queued, now: for this loop's thread
  // while it must wait outside any fiber (sync/waiters.cc).
  void serve_remote() noexcept;
  // Around a fiber's park that another thread will end: a lone loop waits
  // for it rather than calling it a deadlock (a group's loops have the
  // group's own deadlock rule).
  void begin_remote_wait() noexcept { ++remote_waits_; }
  void end_remote_wait() noexcept { --remote_waits_; }
  // A fiber of this loop waits for a task of a loop outside this loop's
  // group: while such a wait lasts, the group's deadlock check waits too
  // (loop_group.cc).
  void begin_wait_beyond_group() noexcept;
  void end_wait_beyond_group() noexcept;
  // Sets an interrupt bit (FiberRecord::kCancel, kTimeout) on `f`; a parked
  // fiber wakes to take it, unless it is unwinding.
  void interrupt(FiberRecord& f, std::uint8_t bit) noexcept;
  // interrupt(f, kCancel), unless `f` has finished.
  void cancel(FiberRecord& f) noexcept;
  // The loop's timer heap, for nodes the caller owns (with_timeout).
  // Queues `node` to fire at `deadline`; TimePoint::max() is never due, and
  // queues nothing (a stream call without a deadline opens a scope for one).
  // Inline: a with_timeout that does not fire costs an append and a pop.
  void add_timer(TimerNode& node, TimePoint deadline) { timers_.push(node, deadline); }
  void remove_timer(TimerNode& node) noexcept { timers_.remove(node); }

  // Waits until `f` finishes (a fiber parks; outside any fiber, the loop
  // runs until then; a plain thread blocks), marks its outcome observed,
  // rethrows its error. Any thread (loop/remote_join.cc).
  static void join(FiberRecord& f);
  // Waits until `f` finishes, without observing its outcome. Its loop only.
  static void wait_for_finish(FiberRecord& f);
  // A Task lets go of `f`: detaches it, or reports an unobserved failure.
  // Any thread. Inline for a joined Task on its loop's thread (switch_path.h).
  static void drop_task(FiberRecord& f) noexcept;
  // Task::cancel(): cancel(f) on f's loop, from any thread.
  static void cancel_task(FiberRecord& f);
  // A plain thread waits until `f` finishes or `deadline` passes.
  // Returns: whether it finished (LoopGroup::run's deadlock watch).
  static bool wait_done_until(FiberRecord& f, TimePoint deadline);
  // From a plain thread: waits until `f` finishes, calling tick() each time
  // `first` (then what tick() returns) passes meanwhile; one post to `f`'s
  // loop in all, so the watching disturbs nothing there. What tick() throws
  // ends the wait and propagates.
  static void wait_done_ticking(FiberRecord& f, Duration first,
                                const std::function<Duration()>& tick);

  // Moves whenever fibers run. Any thread (the stall watchdog).
  std::uint64_t progress() const noexcept { return switches_.get() + iterations_.get(); }

  // Failures nobody can receive go to the handler (default: one line on stderr).
  void set_exception_handler(ExceptionHandler handler);
  void report(std::exception_ptr error, const FiberInfo& info) noexcept;

 private:
  friend struct LoopParts;  // runs the iterations, shuts down, counts (loop/run_loop.cc)

  // The errors of the inline paths, out of line.
  [[noreturn]] static void throw_outside_fiber(const char* what);
  [[noreturn]] static void throw_wrong_thread(const char* what);
  [[noreturn]] static void throw_interrupt(FiberRecord& self);
  [[noreturn]] static void throw_joined_twice(const FiberRecord& f);
  [[noreturn]] static void throw_self_join(const FiberRecord& f);
  [[noreturn]] static void throw_abandoned(const FiberRecord& f);
  // A join from another thread (loop/remote_join.cc).
  static void join_from_elsewhere(FiberRecord& f);
  // The other Task operations from another thread (loop/remote_task.cc).
  enum class TaskOp : std::uint8_t { kStart, kCancel, kDrop };
  // Queues `op` on `f`'s loop from another thread. A start is posted as
  // is: the loop lives (spawn's contract). A cancel or a drop is posted
  // only while the loop lives; returns false once that loop is gone and has
  // let go of `f` (remote_task.cc), and then the caller acts here.
  static bool post_task_op(FiberRecord& f, TaskOp op);
  static void run_task_op(FiberRecord& f, TaskOp op) noexcept;
  void start_here(FiberRecord& f);
  void start_fiber_slow(FiberRecord& f);  // from another thread, or while closing
  static void drop_here(FiberRecord& f) noexcept;
  static void drop_task_slow(FiberRecord& f) noexcept;
  static void release_to_pool(FiberRecord& f) noexcept;
  static void fiber_main(ContextEntry* entry) noexcept;
  static void release_ref(FiberRecord& f) noexcept;
  static void report_failure(FiberRecord& f) noexcept;
  // Interrupts wait while an exception unwinds the running fiber (or the
  // consumer of the generator body it runs): thrown out of a destructor,
  // they would end the process (std::terminate).
  static bool may_interrupt(const FiberRecord& self) noexcept {
    return tls_exception_state->uncaught == 0 && self.outer_unwinding == 0;
  }

  FiberRecord* pick_next() noexcept;
  // The next ready fiber, started or not. Defined (always inline) in
  // scheduler.cc, its only user.
  inline FiberRecord* pick_one() noexcept;
  // With nothing ready: whether the running fiber may go on into a new
  // iteration (the run loop has nothing due); counts it if so.
  bool begins_iteration_alone() noexcept;
  void suspend(FiberRecord& self) noexcept;
  void switch_to(FiberRecord& self, FiberRecord* next) noexcept;
  void suspend_parked(FiberRecord& self, WaitKind kind, std::int64_t detail) noexcept;
  void make_ready(FiberRecord& f) noexcept;
  ParkEnd park_waiter_timed(TimePoint deadline, WaitKind kind, std::int64_t detail);
  void resume_from_scheduler(FiberRecord& f) noexcept;
  // Runs the fibers ready now (an iteration's budget), switching among them.
  void run_iteration() noexcept;
  [[noreturn]] void finish_running() noexcept;
  bool prepare_to_run(FiberRecord& f) noexcept;
  void finish_unstarted(FiberRecord& f, std::exception_ptr error) noexcept;
  void mark_finished(FiberRecord& f) noexcept;
  void wait_finished(FiberRecord& f);
  void run_until_finished(FiberRecord& f);
  void abandon_remaining() noexcept;  // loop/shutdown.cc
  // (ASan, TSan) The context `f` resumes on, as the sanitizers know it.
  static StackRange stack_of([[maybe_unused]] const FiberRecord& f) noexcept;

  static constexpr std::size_t kContextAhead = 4;  // prefetch distances, measured
  static constexpr std::size_t kRecordAhead = 8;   // with 1M ready fibers
  // Iterations a closing loop runs before it abandons the fibers left.
  static constexpr std::size_t kShutdownIterations = 64;

  LoopParts& parts_;
  Loop& owner_;
  StackOptions default_stack_;
  StackPool& stacks_;
  const std::uint64_t serial_;
  RecordPool* records_;          // orphaned, not deleted, by ~Scheduler
  RecordPool* foreign_records_;  // (shared) for fibers spawned from other threads

  FiberRecord* current_ = nullptr;             // running fiber; null in the scheduler
  ContextHandle scheduler_context_ = nullptr;  // the thread's own stack, saved while a fiber runs
  ExceptionState scheduler_exceptions_;        // the scheduler's, saved while a fiber runs
  ReadyQueue ready_;
  std::size_t budget_ = 0;                        // fibers still to run in this iteration
  IntrusiveList<FiberRecord, AllFibersTag> all_;  // every fiber not yet finished
  // The scheduler must look (callbacks, posts, polls, timers, shutdown)
  // before the fibers start another iteration by themselves.
  bool return_to_scheduler_ = false;
  bool in_scheduler_ = false;           // the run loop is on the stack
  bool closing_ = false;                // shutdown() has begun
  bool takes_task_posts_ = true;        // under task_posts_mutex()
  bool abandoned_fibers_ = false;       // shutdown() left fibers that would not end
  std::size_t remote_waits_ = 0;        // parks another thread will end
  std::size_t closing_iterations_ = 0;  // iterations run since shutdown() began
  FiberRecord* run_target_ = nullptr;   // the run loop returns when it finishes
  // The clock at the last poll: what parking fibers stamp themselves with.
  TimePoint coarse_now_ = Clock::now();
  TimerClock clock_;   // the timers' clock, and deadlines' "now" (clock())
  TimerHeap& timers_;  // the loop's (LoopParts::timers)
  ExceptionHandler exception_handler_;

  // Fiber ids: this loop takes them in blocks; another thread's spawn one
  // at a time.
  static constexpr FiberId kIdBlock = 1024;
  std::atomic<FiberId> ids_{1};
  FiberId next_id_ = 0;
  FiberId id_block_end_ = 0;
  std::uint64_t created_ = 0;
  std::uint64_t finished_ = 0;
  RelaxedCounter switches_;
  RelaxedCounter iterations_;
  StackRange scheduler_stack_;  // (ASan) the stack the scheduler runs on; cold: kept last
};

// Whether `scheduler` belongs to a loop that exists now, on any thread;
// with `serial`, whether it is still the loop that had that serial (not a
// later loop at the same address).
bool scheduler_is_live(const Scheduler* scheduler) noexcept;
bool scheduler_is_live(const Scheduler* scheduler, std::uint64_t serial) noexcept;

// "fiber 7 'name'" (the name only if it has one): how every message names a fiber.
std::string describe_fiber(const FiberRecord& f);

// This thread's Loop; its running fiber. Throw std::logic_error naming
// `what` when there is none (throw_no_loop: no Loop on this thread).
Loop& current_loop(const char* what);
FiberRecord& running_fiber_or_throw(const char* what);
[[noreturn]] void throw_no_loop(const char* what);

}  // namespace fiberloop::internal

#include "loop/internal/switch_path.h"  // IWYU pragma: export
