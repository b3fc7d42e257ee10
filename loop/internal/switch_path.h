// The switch path of the Scheduler, inline: yield() and park() compile into
// their caller's frame, so that no function return sits between a fiber's
// code and the switch (see fiber/internal/context.h on what such returns
// cost). Every FiberState transition here is checked, in every build.
// Included at the end of scheduler.h, which it completes (a file that
// includes this one alone gets scheduler.h first).
#pragma once

#include "loop/internal/scheduler.h"

namespace fiberloop::internal {

// The scheduler of this thread's loop. initial-exec: a plain %fs-relative
// load, even when fiberloop is linked as a shared library.
extern thread_local constinit Scheduler* tls_scheduler __attribute__((tls_model("initial-exec")));
// The spin locks of shared sync/ primitives this thread holds (SyncGuard
// counts them). A fiber never switches while it holds one: the next fiber of
// its loop to take that lock would spin for ever on the thread that holds it.
extern thread_local constinit int tls_sync_locks_held __attribute__((tls_model("initial-exec")));

inline Scheduler* Scheduler::current() noexcept { return tls_scheduler; }

// `d` from now, for every deadline the API takes as a duration: on a loop's
// thread from its TimerClock (never early, at most 20 us late, never before
// a deadline taken earlier there), elsewhere exact. A d <= 0 is the exact
// now, passed already (sleep_for(0) yields).
inline TimePoint deadline_from_now(Duration d) noexcept {
  if (d <= Duration::zero()) return Clock::now();
  Scheduler* scheduler = tls_scheduler;
  return deadline_after(d, scheduler != nullptr ? scheduler->clock().now_at_least() : Clock::now());
}

inline StackRange Scheduler::stack_of([[maybe_unused]] const FiberRecord& f) noexcept {
#if FIBERLOOP_SANITIZE_SWITCH
  return f.suspended_on;
#else
  return {};
#endif
}

inline Loop& current_loop(const char* what) {
  Scheduler* scheduler = tls_scheduler;
  if (scheduler == nullptr) [[unlikely]]
    throw_no_loop(what);
  return scheduler->owner();
}

inline void Scheduler::check_thread(const char* what) const {
  if (tls_scheduler != this) [[unlikely]]
    throw_wrong_thread(what);
}

inline FiberRecord& Scheduler::running_fiber(const char* what) {
  if (current_ == nullptr) [[unlikely]]
    throw_outside_fiber(what);
  return *current_;
}

// Inline on the loop's own thread: a spawn makes one call fewer. The same
// steps as start_here(), which the slow path takes.
[[gnu::always_inline]] inline void Scheduler::start_fiber(FiberRecord& f) {
  if (tls_scheduler != this || closing_) [[unlikely]]
    return start_fiber_slow(f);
  FIBERLOOP_CHECK_FIBER(f, f.state == FiberState::kReady && f.context == nullptr,
                        "start_fiber: the record is not a fresh one");
  all_.push_back(f);
  ++created_;
  ready_.push_back(&f);
}

// The whole same-loop hand-off is always inline, down to the queues' push
// and pop, the SyncGuard and switch_context(): GCC budgets inlining per
// translation unit, so one more function in a user's file (a benchmark's,
// in session 19) left suspend, make_ready, the guard and the waiter's
// prepare out of line, and a Mutex hand-off took 1.8x the time (177
// instructions per switch instead of 88; bench/RESULTS.md).
[[gnu::always_inline]] inline void Scheduler::suspend(FiberRecord& self) noexcept {
  switch_to(self, pick_next());
}

// To `next`, or to the run loop for null; `self` goes on if it is `next`.
[[gnu::always_inline]] inline void Scheduler::switch_to(FiberRecord& self,
                                                        FiberRecord* next) noexcept {
  if (next == &self) {  // it was the only one ready
    self.state = FiberState::kRunning;
    return;
  }
  ++switches_;
  current_ = next;
#if FIBERLOOP_SANITIZE_SWITCH
  self.suspended_on = current_stack();
#endif
  if (next != nullptr) {
    next->state = FiberState::kRunning;
    switch_context(&self.context, &self.exceptions, next->context, next->exceptions, next,
                   stack_of(*next));
  } else {
    switch_context(&self.context, &self.exceptions, scheduler_context_, scheduler_exceptions_,
                   nullptr, scheduler_stack_);
  }
  // Resumed: whoever switched here set current_ = &self and kRunning.
}

// To the ready queue: from running (a yield), parked (a wake or an
// interrupt), or spawned and not yet started.
[[gnu::always_inline]] inline void Scheduler::make_ready(FiberRecord& f) noexcept {
  FIBERLOOP_CHECK_FIBER(f, f.state == FiberState::kRunning || f.state == FiberState::kParked,
                        "make_ready: only a running or parked fiber becomes ready");
  f.state = FiberState::kReady;
  ready_.push_back(&f);
}

[[gnu::always_inline]] inline void Scheduler::deliver_interrupt(FiberRecord& self) {
  if (self.pending && may_interrupt(self)) [[unlikely]]
    throw_interrupt(self);
}

// Always inline, as park(): a caller that grows past GCC's inlining budget
// (a benchmark's loop) would otherwise call it, and pay a mispredicted
// return at every resumption (fiber/internal/context.h).
[[gnu::always_inline]] inline void Scheduler::yield() {
  FiberRecord& self = running_fiber("yield");
  deliver_interrupt(self);
  if (ready_.empty()) {
    // Alone and nothing else due: the next iteration begins, with the same
    // fiber, without a round trip through the ready queue. Otherwise the
    // run loop has work, and gets it without being asked a second time.
    if (begins_iteration_alone()) return;
    make_ready(self);
    switch_to(self, nullptr);
  } else {
    make_ready(self);
    suspend(self);
  }
  deliver_interrupt(self);
}

// Every park's one body: marks the running fiber parked (for `kind`, what
// Loop::dump() shows), switches away, and, once resumed, numbers the park
// as over (a wake from another thread meant for it is stale from then on).
[[gnu::always_inline]] inline void Scheduler::suspend_parked(FiberRecord& self, WaitKind kind,
                                                             std::int64_t detail) noexcept {
  FIBERLOOP_CHECK_FIBER(self, self.state == FiberState::kRunning, "park: the fiber is not running");
  self.state = FiberState::kParked;
  self.waiting_on = kind;
  self.parked_at = coarse_now_;
  self.wait_detail = detail;
  self.notified = false;
  self.woken_remotely = false;
  suspend(self);
  ++self.park_seq;
}

// Always inline: a frame between the waiting code and the switch costs a
// mispredicted return at every resumption.
[[gnu::always_inline]] inline void Scheduler::park(WaitKind kind, std::int64_t detail) {
  FiberRecord& self = running_fiber("park");
  if (self.pending && may_interrupt(self)) [[unlikely]]
    throw_interrupt(self);
  suspend_parked(self, kind, detail);
  if (!self.notified) deliver_interrupt(self);
}

inline bool Scheduler::park_uninterruptible(WaitKind kind, std::int64_t detail) noexcept {
  FiberRecord& self = *current_;
  suspend_parked(self, kind, detail);
  return self.notified;
}

// Without a deadline, inline: the uncontended hand-offs of sync/ park here.
[[gnu::always_inline]] inline Scheduler::ParkEnd Scheduler::park_waiter(TimePoint deadline,
                                                                        WaitKind kind,
                                                                        std::int64_t detail) {
  if (deadline != kNever) [[unlikely]]
    return park_waiter_timed(deadline, kind, detail);
  FiberRecord& self = *current_;
  suspend_parked(self, kind, detail);
  return self.notified ? ParkEnd::kWoken : ParkEnd::kInterrupted;
}

inline void Scheduler::wake(FiberRecord& f) noexcept {
  f.notified = true;
  if (f.state == FiberState::kParked) make_ready(f);
}

[[gnu::always_inline]] inline void Scheduler::join(FiberRecord& f) {
  // (Another thread may be destroying that loop: an atomic read, a plain one
  // on x86. Acquire: seen null, the loop's last writes to `f` are seen too.)
  const Scheduler* const home = loop_of(f).load(std::memory_order_acquire);
  if (home != tls_scheduler && home != nullptr) [[unlikely]]
    return join_from_elsewhere(f);
  if (f.joined) [[unlikely]]
    throw_joined_twice(f);
  if (f.state == FiberState::kAbandoned) [[unlikely]]
    throw_abandoned(f);
  if (!f.finished()) f.scheduler->wait_finished(f);
  f.joined = true;
  if (f.error) [[unlikely]]
    std::rethrow_exception(f.error);
}

// The end of spawn(fn).join(): a joined fiber has finished and its outcome
// was seen, so the Task's reference just goes (as drop_here() does).
[[gnu::always_inline]] inline void Scheduler::drop_task(FiberRecord& f) noexcept {
  if (!f.joined || loop_of(f).load(std::memory_order_acquire) != tls_scheduler) [[unlikely]]
    return drop_task_slow(f);
  FIBERLOOP_CHECK_FIBER(f, f.refs > 0, "drop_task: the record has no reference left");
  if (--f.refs == 0) release_to_pool(f);
}

inline void Scheduler::wait_for_finish(FiberRecord& f) {
  if (f.state == FiberState::kAbandoned) [[unlikely]]
    throw_abandoned(f);
  if (!f.finished()) f.scheduler->wait_finished(f);
}

[[gnu::always_inline]] inline void Scheduler::wait_finished(FiberRecord& f) {
  check_thread("Task::join");
  if (current_ == nullptr) return run_until_finished(f);  // drives the loop
  if (current_ == &f) [[unlikely]]
    throw_self_join(f);
  DoneWaiter waiter;
  waiter.fiber = current_;
  f.done_waiters.push_back(waiter);
  park(WaitKind::kJoin, static_cast<std::int64_t>(f.id));  // an interrupt leaves `waiter`
                                                           // linked until it is destroyed
}

}  // namespace fiberloop::internal
