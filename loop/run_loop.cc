// The run loop: one pass per iteration, as loop_parts.h describes.
#include <algorithm>
#include <chrono>
#include <iostream>

#include "fiber/internal/stack_pool.h"
#include "loop/internal/loop_parts.h"
#include "loop/internal/own_thread.h"

namespace fiberloop::internal {
namespace {

// When the loop is about to block for long (or with no deadline at all), the
// pages of pooled stacks beyond these go back to the kernel. Short waits keep
// the pool warm: a burst of fibers that sleeps 10 ms must not fault its
// stacks in again.
constexpr std::size_t kIdleStacksKept = 1024;
constexpr Duration kLongIdle = std::chrono::seconds(1);

// While a loop with nothing to do waits for another thread's post, how often
// it looks whether such a thread still exists: from 10 ms, doubling, to 1 s.
constexpr Duration kFirstOtherThreadRecheck = std::chrono::milliseconds(10);
constexpr Duration kLastOtherThreadRecheck = std::chrono::seconds(1);

// How long a loop whose fibers wait on other threads looks for their answer
// before it blocks: the answer to a cross-loop hand-off usually comes within
// a few microseconds, and a blocked loop must be woken by a syscall and the
// kernel's scheduler (tens of microseconds). Go's idle Ps spin likewise.
constexpr Duration kSpinForPost = std::chrono::microseconds(50);

}  // namespace

LoopParts::LoopParts(Loop& owner, const LoopOptions& options)
    : options(options),
      scheduler(*this, owner, options),
      callbacks(scheduler, timers),
      reactor(callbacks, options.backend),
      remote(reactor, callbacks),
      pool(options.blocking_threads, remote),
      diagnostics(*this, options.stall_threshold),
      other_thread_recheck_(kFirstOtherThreadRecheck) {}

LoopParts::~LoopParts() {
  FIBERLOOP_CHECK(scheduler.closing_, "~LoopParts before shutdown()");
  pool.join();  // while what the jobs post to still exists
  // Task operations from other threads stop here (their posts are made
  // under the lock this takes, so none is under way after it); those
  // posted so far run in the drain below.
  scheduler.stop_taking_task_posts();
  remote.wait_for_producers();
  remote.drain(true);
  callbacks.discard();
}

LoopParts::Exit LoopParts::run(FiberRecord* until) {
  Scheduler& s = scheduler;
  s.in_scheduler_ = true;
  diagnostics.set_running(true);
  s.run_target_ = until;
  // However run() ends: the poller's failure (epoll_wait, io_uring_enter)
  // or an allocation's leaves the loop not running, to be run again or
  // destroyed.
  struct NotRunning {
    LoopParts& parts;
    ~NotRunning() {
      parts.scheduler.run_target_ = nullptr;
      parts.scheduler.in_scheduler_ = false;
      parts.diagnostics.set_running(false);
    }
  } not_running{*this};
  Exit exit = Exit::kNothingToDo;
  for (;;) {
    s.return_to_scheduler_ = s.closing_;  // while closing, every iteration comes back here
    if (until != nullptr && until->finished()) {
      exit = Exit::kTargetFinished;
      break;
    }
    take_posts();
    if (remote.take_stop() && !s.closing_) {
      exit = Exit::kStopped;
      break;
    }
    if (!poll_for_work()) break;  // nothing can make progress
    callbacks.run_due();
    if (!s.ready_.empty()) {
      if (s.closing_ && ++s.closing_iterations_ > Scheduler::kShutdownIterations) break;
      s.run_iteration();
    }
  }
  return exit;
}

void LoopParts::take_posts() {
  if (!remote.pending()) return;
  if (remote.take_dump_request()) dump(std::cerr);
  remote.drain(scheduler.closing_);
}

bool LoopParts::spin_for_post(std::optional<Duration>& timeout) const noexcept {
  Duration spin = kSpinForPost;
  if (timeout && *timeout < spin) spin = *timeout;
  const TimePoint start = Clock::now(), until = start + spin;
  TimePoint now = start;
  do {
    for (int i = 0; i < 64; ++i) {
      if (remote.pending()) return true;
      __builtin_ia32_pause();
    }
    now = Clock::now();
  } while (now < until);
  if (timeout) timeout = std::max(Duration::zero(), *timeout - (now - start));  // (a timer's)
  return false;
}

bool LoopParts::poll_for_work() {
  Scheduler& s = scheduler;
  const bool busy = !s.ready_.empty() || callbacks.any_due();
  // Work that other threads will bring: run_blocking() jobs and KeepAlives.
  // A lone loop's fibers may also wait on another loop or thread that will
  // end their wait (a group has its own deadlock rule: loop_group.cc).
  // Shutdown waits, within its grace, for jobs (a file operation waits out
  // its job, and the shutdown waits for the workers afterwards anyway,
  // bounded by LoopOptions::blocking_shutdown_timeout: shutdown.cc) and for
  // the answers other loops owe to fibers that cannot be interrupted until
  // they come (a primitive's first use from this loop, a condition
  // variable's waiter taking its mutex back): those loops close too, and
  // still answer.
  const bool expected = s.closing_ ? (pool.outstanding() != 0 || s.remote_waits_ != 0) &&
                                         Clock::now() < closing_deadline_
                                   : (pool.outstanding() != 0 || remote.keep_alives() != 0 ||
                                      (group == nullptr && s.remote_waits_ != 0));
  std::optional<Duration> timeout;  // none: until an fd event or a wake-up
  if (!busy && timers.empty() && reactor.waiters() == 0 && !expected) {
    // Nothing here can make progress. Fibers that wait may still be woken by
    // a post from a thread that is not fiberloop's: wait for it (as asyncio
    // and Boost.Fiber do), and look again now and then, in case that thread
    // ends without posting. Otherwise it is a deadlock (Go's rule).
    if (s.closing_ || s.all_.empty()) {
      other_thread_recheck_ = kFirstOtherThreadRecheck;
      // Not while a post is queued: a thread may post and then drop the last
      // KeepAlive after this iteration's take_posts(). keep_alives() above
      // was an acquire, so a post made before that drop is seen here.
      // (The fence pairs with a joiner's from another thread, which posts
      // and then reads the finished flag: remote_join.cc.)
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (s.closing_ || !remote.pending()) return false;
      timeout = Duration::zero();
    } else if (!other_threads_exist(/*loop_threads_count=*/group == nullptr)) {
      // A thread that posted (set an Event, say) and then ended: its post
      // is queued, so look for one only now that the thread is seen gone.
      if (!remote.pending()) {
        other_thread_recheck_ = kFirstOtherThreadRecheck;
        return false;
      }
      timeout = Duration::zero();
    } else {
      timeout = other_thread_recheck_;
      other_thread_recheck_ = std::min(other_thread_recheck_ * 2, kLastOtherThreadRecheck);
    }
  } else {
    other_thread_recheck_ = kFirstOtherThreadRecheck;
    if (busy) {
      timeout = Duration::zero();
    } else if (s.closing_) {  // a closing loop waits out its grace at most
      const TimePoint next = timers.empty() ? kNever : timers.next_deadline();
      timeout = time_until(std::min(next, closing_deadline_), Clock::now());
    } else if (!timers.empty()) {
      timeout = time_until(timers.next_deadline(), Clock::now());
    }
  }
  const bool blocks = !timeout || *timeout > Duration::zero();
  // Nothing here can progress but through another thread (the group's
  // deadlock check reads this).
  const bool stuck_here = blocks && !busy && timers.empty() && reactor.waiters() == 0 &&
                          pool.outstanding() == 0 && remote.keep_alives() <= own_keep_alives;
  if (stuck_here) stuck.store(true, std::memory_order_release);
  if (blocks || reactor.waiters() != 0) {  // else there is nothing to poll for
    if (blocks) {
      // Pooled stacks go back to the kernel once the loop has had nothing
      // to do for kLongIdle: not at every pause of a bursty load (a group's
      // idle loop waits without a deadline between bursts).
      const bool long_idle = !timeout || *timeout >= kLongIdle;
      if (long_idle && s.stacks_.trim_worthwhile(kIdleStacksKept)) {
        // Fibers that ran since the last poll were work too, however long
        // they kept the switch path from coming back here: the idle period
        // starts now.
        const TimePoint now = Clock::now();
        if (s.progress() != progress_at_poll_) {
          last_busy_ = now;
          progress_at_poll_ = s.progress();  // counted: not again after the wait
        }
        const Duration idle = now - last_busy_;
        if (idle >= kLongIdle) {
          s.stacks_.trim(kIdleStacksKept);
        } else {
          timeout = kLongIdle - idle;  // then look again
        }
      }
      if (s.remote_waits_ != 0 && spin_for_post(timeout)) timeout = Duration::zero();
      if (remote.enter_poll()) timeout = Duration::zero();
    }
    struct LeavePoll {
      RemoteQueue& remote;
      ~LeavePoll() { remote.leave_poll(); }
    } leave{remote};  // however the poll ends (a poller failure throws)
    reactor.poll(timeout);
  }
  if (stuck_here) stuck.store(false, std::memory_order_release);
  const TimePoint now = s.clock_.now();
  s.coarse_now_ = now;
  // Fibers that ran since the last poll (and were not counted above) count
  // as work up to now: after a wait shorter than kLongIdle, as the trim is
  // concerned, or with nothing worth trimming yet.
  if (!s.ready_.empty() || busy || s.progress() != progress_at_poll_) last_busy_ = now;
  progress_at_poll_ = s.progress();
  while (TimerNode* node = timers.pop_expired(now)) node->fire(node);
  return !s.closing_ || !s.ready_.empty() || now < closing_deadline_;
}

}  // namespace fiberloop::internal
