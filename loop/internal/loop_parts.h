// A loop's parts: the scheduler core and the components around it, and the
// run loop that drives them (run_loop.cc). A Loop owns one; its headers are
// private to loop/.
//
// One iteration of the run loop:
//   take what other threads posted; return if stopped;
//   poll the reactor (blocking only when nothing is ready) and fire the
//   timers that are due;
//   run the callbacks that were due when the iteration began;
//   run the fibers that were ready when it began: they switch among
//   themselves, and come back here only when the budget is spent and the
//   run loop has work (needs_scheduler()), or when none is ready.
#pragma once

#include <atomic>
#include <optional>

#include <cstdint>
#include <iosfwd>

#include "loop/internal/blocking_pool.h"
#include "loop/internal/callbacks.h"
#include "loop/internal/diagnostics.h"
#include "loop/internal/reactor.h"
#include "loop/internal/remote_queue.h"
#include "loop/internal/scheduler.h"
#include "loop/internal/timer_heap.h"
#include "loop/options.h"

namespace fiberloop {
class LoopGroup;
}

namespace fiberloop::internal {

// The loop's GeneratorSwitchHook (fiber/internal/context.h; loop/timeout.cc).
void on_generator_switch(void** body_state, unsigned consumer_unwinding, bool into_body) noexcept;

struct LoopParts {
  // Throws: std::logic_error if this thread already has a Loop;
  //         std::system_error if the kernel refuses the epoll instance.
  LoopParts(Loop& owner, const LoopOptions& options);
  // Joins the workers, drops what is still queued, leaves the thread.
  // Requires (checked): shutdown() ran.
  ~LoopParts();
  LoopParts(const LoopParts&) = delete;
  LoopParts& operator=(const LoopParts&) = delete;

  // Why run() returned.
  enum class Exit { kTargetFinished, kStopped, kNothingToDo };
  // Iterations until `until` finishes (null: never), stop(), or nothing can
  // make progress. Waiting for another thread's post is progress as long
  // as such a thread exists (Go's rule for deadlocks).
  Exit run(FiberRecord* until);
  // Closes the loop in bounded time (shutdown.cc); ~Loop's, or, in a
  // LoopGroup, close() first (then shutdown() does nothing more).
  void shutdown() noexcept;
  void close() noexcept { shutdown(); }
  // The shutdown's end for worker jobs still running after
  // LoopOptions::blocking_shutdown_timeout (shutdown.cc).
  void give_up_on_jobs() noexcept;
  void report_waiting_for_jobs() noexcept;
  // Whether run() is on the stack.
  bool running() const noexcept { return scheduler.in_scheduler_; }

  // Once per iteration, on the switch path: must the run loop look before
  // the fibers start the next iteration by themselves? For callbacks, posts,
  // fds (polled every iteration while fibers wait on them) and due timers:
  // the one place the clock is read on the switch path, only with timers
  // (and then exactly only when the cycle counter cannot rule a due one out).
  // Always inline: it is on every iteration boundary of the switch path.
  [[gnu::always_inline]] bool needs_scheduler() noexcept {
    if (scheduler.return_to_scheduler_ || callbacks.any_due() || reactor.waiters() != 0 ||
        remote.pending()) {
      return true;
    }
    return !timers.empty() && scheduler.clock_.due(timers.next_deadline());
  }

  LoopStats stats() const noexcept;      // dump.cc
  void dump(std::ostream& out) const;    // dump.cc
  std::size_t stack_high_water() const;  // dump.cc
  // The message a join from outside any fiber throws when nothing can make
  // progress: every parked fiber and what it waits on (dump.cc).
  std::string deadlock_report(const FiberRecord& awaited) const;

  // In a LoopGroup (loop_group.cc): the loop's index and group; the
  // KeepAlive the group holds; whether the group is done with the loop (only
  // then may it be destroyed); and, for the group's deadlock check (Go's
  // rule), whether the loop waits with nothing here that can progress.
  std::size_t index = 0;
  LoopGroup* group = nullptr;
  std::size_t own_keep_alives = 0;
  bool group_releases = false;
  std::atomic<bool> stuck{false};
  // Fibers of this loop joining a task of a loop outside the group: that
  // loop's thread will end their wait (remote_join.cc).
  std::atomic<std::size_t> waits_beyond_group{0};

  const LoopOptions options;
  Scheduler scheduler;
  TimerHeap timers;
  Callbacks callbacks;
  Reactor reactor;
  RemoteQueue remote;
  BlockingPool pool;
  Diagnostics diagnostics;  // last: its watchdog reads the rest, and stops first

 private:
  // Polls the reactor (blocking when nothing is ready) and fires due timers.
  // Returns: false when nothing can make progress.
  bool poll_for_work();
  // Takes other threads' posts into the callbacks.
  void take_posts();
  // Before a loop whose fibers wait on other threads blocks: looks for a
  // post for a little while (at most `timeout`, which it shortens by the
  // time spent, so that a timer is not late). Returns: whether one came.
  bool spin_for_post(std::optional<Duration>& timeout) const noexcept;
  // While a loop with nothing to do waits for another thread's post, how
  // long until it looks again whether such a thread exists.
  Duration other_thread_recheck_;
  // While closing: until when fibers that cannot be interrupted (they are
  // unwinding) may still wait for a timer or an fd (shutdown.cc).
  TimePoint closing_deadline_{};
  bool shut_down_ = false;
  bool in_shutdown_ = false;            // shutdown() is on the stack
  TimePoint last_busy_ = Clock::now();  // when fibers or callbacks last had work
  // The scheduler's progress() at the last poll: fibers that run between
  // polls without coming back to the run loop (iterations begun in the
  // switch path) move it.
  std::uint64_t progress_at_poll_ = 0;
};

}  // namespace fiberloop::internal
