// The switch path of LoopCore, inline: yield() compiles into its caller's
// frame, so that no function return sits between a fiber's code and the
// switch (see fiber/internal/context.h on what such returns cost).
// Included at the end of loop_core.h only.
#pragma once

namespace fiberloop::internal {

// The loop of this thread. initial-exec: a plain %fs-relative load, even
// when fiberloop is linked as a shared library.
extern thread_local LoopCore* tls_loop __attribute__((tls_model("initial-exec")));

inline LoopCore* LoopCore::current() noexcept { return tls_loop; }

inline void LoopCore::check_thread(const char* what) const {
  if (tls_loop != this) [[unlikely]]
    throw_wrong_thread(what);
}

inline Loop& current_loop(const char* what) {
  LoopCore* core = tls_loop;
  if (core == nullptr) [[unlikely]]
    throw_no_loop(what);
  return core->owner();
}

inline FiberRecord& LoopCore::running_fiber(const char* what) {
  if (current_ == nullptr) [[unlikely]]
    throw_outside_fiber(what);
  return *current_;
}

// Once per iteration: must the scheduler run before the next one? It must
// for its own work (callbacks, cross-thread posts, stop), to poll when fibers
// wait on fds (every iteration, as asyncio does), and when a timer is due:
// the one place the clock is read on the switch path, and only with timers.
inline bool LoopCore::needs_scheduler() const noexcept {
  if (attention_ || !soon_.empty() || fd_waiters_ != 0 ||
      remote_pending_.load(std::memory_order_relaxed)) {
    return true;
  }
  return !timers_.empty() && timers_.next_deadline() <= Clock::now();
}

[[gnu::noinline]] inline FiberRecord* LoopCore::pick_next() noexcept {
  if (budget_ == 0) {
    // The iteration is over. Start the next one here, without a detour
    // through the scheduler, unless the scheduler has work of its own.
    if (ready_.empty() || needs_scheduler()) return nullptr;
    budget_ = ready_.size();
    ++iterations_;
  }
  --budget_;
  FiberRecord* next = ready_.pop_front();
  // Fetch ahead what later switches will touch: with many fibers each one is
  // a cache (and TLB) miss. Records kRecordAhead switches ahead; the saved
  // registers on their stacks kContextAhead ahead (their record, fetched
  // earlier, says where those are). A fiber not yet started has no saved
  // registers (context is null): prefetching near address 0 is harmless, and
  // integer arithmetic keeps that free of a branch and of pointer UB.
  if (FiberRecord* soon = ready_.peek(kContextAhead)) {
    const auto sp = reinterpret_cast<std::uintptr_t>(soon->context);
    __builtin_prefetch(reinterpret_cast<const void*>(sp));
    __builtin_prefetch(reinterpret_cast<const void*>(sp + 64));
    __builtin_prefetch(reinterpret_cast<const void*>(sp + 128));
  }
  if (FiberRecord* later = ready_.peek(kRecordAhead)) __builtin_prefetch(later);
  // A fiber that has not run yet gets its stack now; one that cannot (or
  // was cancelled first) finishes on the spot, and we pick again.
  if (next->context == nullptr && !prepare_to_run(*next)) [[unlikely]]
    return pick_next();
  return next;
}

inline void LoopCore::suspend(FiberRecord& self) noexcept {
  FiberRecord* next = pick_next();
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

inline void LoopCore::make_ready(FiberRecord& f) noexcept {
  f.state = FiberState::kReady;
  ready_.push_back(&f);
}

inline void LoopCore::deliver_interrupt(FiberRecord& self) {
  if (self.pending && may_interrupt()) [[unlikely]]
    throw_interrupt(self);
}

inline void LoopCore::yield() {
  FiberRecord& self = running_fiber("yield");
  deliver_interrupt(self);
  make_ready(self);
  suspend(self);
  deliver_interrupt(self);
}

[[gnu::always_inline]] inline void LoopCore::park(WaitKind kind, std::int64_t detail) {
  FiberRecord& self = running_fiber("park");
  if (self.pending && may_interrupt()) [[unlikely]] {
    static_cast<FiberRecord::WaitHook&>(self).unlink();
    throw_interrupt(self);
  }
  self.state = FiberState::kParked;
  self.waiting_on = kind;
  self.parked_at = coarse_now_;
  self.wait_detail = detail;
  self.notified = false;
  suspend(self);
  if (!self.notified) deliver_interrupt(self);
}

inline bool LoopCore::park_masked(WaitKind kind) noexcept {
  FiberRecord& self = *current_;
  self.state = FiberState::kParked;
  self.waiting_on = kind;
  self.parked_at = coarse_now_;
  self.wait_detail = 0;
  self.notified = false;
  suspend(self);
  return self.notified;
}

inline void LoopCore::join(FiberRecord& f) {
  if (f.joined) [[unlikely]]
    throw_joined_twice(f);
  if (f.state == FiberState::kAbandoned) [[unlikely]]
    throw_abandoned(f);
  if (!f.finished()) f.loop->wait_finished(f);
  f.joined = true;
  if (f.error) [[unlikely]]
    std::rethrow_exception(f.error);
}

inline void LoopCore::wait_finished(FiberRecord& f) {
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
