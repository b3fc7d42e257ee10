// Interrupts and deadlines in a fiber: with_timeout()'s scope, how an
// interrupt comes out of a suspension point, and this_fiber's sleeps.
#include <string>

#include "fiber/internal/check.h"
#include "loop/errors.h"
#include "loop/internal/deadline.h"
#include "loop/internal/format.h"
#include "loop/internal/scheduler.h"
#include "loop/internal/timeout_scope.h"
#include "loop/this_fiber.h"

namespace fiberloop::internal {

void Scheduler::pass_while_closing(FiberRecord& self) noexcept {
  FIBERLOOP_CHECK_FIBER(self, tls_sync_locks_held == 0,
                        "a fiber switches while it holds a shared sync primitive's lock");
  make_ready(self);
  suspend(self);
}

void Scheduler::pass_before_sync_lock() noexcept {
  Scheduler* const scheduler = tls_scheduler;
  if (scheduler == nullptr || !scheduler->closing_ || scheduler->current_ == nullptr) return;
  FiberRecord& self = *scheduler->current_;
  if ((self.pending & FiberRecord::kCancel) != 0 && may_interrupt(self)) {
    scheduler->pass_while_closing(self);
  }
}

void Scheduler::throw_interrupt(FiberRecord& self) {
  if (self.pending & FiberRecord::kCancel) {
    if (Scheduler& scheduler = *self.scheduler; scheduler.closing_) {
      // Delivered again at every suspension point, and only after a pass
      // through the ready queue: a fiber that catches it in a loop still
      // comes back to the run loop, which abandons it (loop/shutdown.cc).
      // Not while the fiber holds a shared primitive's lock (it is thrown
      // from inside the operation): that operation made its pass before it
      // took the lock (SyncGuard).
      if (tls_sync_locks_held == 0) scheduler.pass_while_closing(self);
    } else {
      self.pending &= static_cast<std::uint8_t>(~FiberRecord::kCancel);
    }
    throw fiberloop::Cancelled{};
  }
  const TimeoutScope* scope = TimeoutScope::expired(self.timeouts);
  std::string what = "with_timeout: ";
  if (scope != nullptr && scope->label != nullptr) {
    what = std::string(scope->label) + " has passed";
  } else if (scope != nullptr) {
    what += format_duration(scope->timeout) + " elapsed (the timeout set at " +
            scope->where.file_name() + ":" + std::to_string(scope->where.line()) + ")";
    if (scope->fired_on != WaitKind::kNothing) {
      what += " while " +
              describe_wait(scope->fired_on, scope->fired_detail, scope->fired_call, Clock::now());
    }
  } else {
    what += "deadline passed";
  }
  throw fiberloop::TimeoutError(what);
}

void TimeoutScope::fire_scope(TimerNode* node) noexcept {
  auto& scope = *static_cast<TimeoutScope*>(node);
  scope.fired = true;  // a generator body between resumes takes it when resumed
  if (scope.fiber == nullptr) return;
  if (const FiberRecord& f = *scope.fiber; f.state == FiberState::kParked) {
    scope.fired_on = f.waiting_on;
    scope.fired_detail = f.wait_detail;
    scope.fired_call = f.wait_call;
  }
  scope.scheduler->interrupt(*scope.fiber, FiberRecord::kTimeout);
}

void TimeoutScope::move_to(TimePoint at) {
  if (fired) return;  // too late: the interrupt is on its way
  scheduler->remove_timer(*this);
  deadline = at;
  scheduler->add_timer(*this, at);
}

void TimeoutScope::close_slow() noexcept {
  // A generator body's scope may end after its loop is gone (the generator
  // outlived it): then there is no timer left to remove.
  Scheduler* const here = Scheduler::current();
  if (here == scheduler ? here->serial() == serial : scheduler_is_live(scheduler, serial)) {
    scheduler->remove_timer(*this);
  }
  if (fiber == nullptr) {
    // A generator body running outside any fiber (a loop callback, after
    // its loop ended): the generator keeps the rest of the chain.
    if (held_by != nullptr && *held_by == this) {
      *held_by = outer;
      if (outer != nullptr) outer->held_by = held_by;
    }
    return;
  }
  fiber->timeouts = outer;
  if (fired && expired(outer) == nullptr) {
    fiber->pending &= static_cast<std::uint8_t>(~FiberRecord::kTimeout);
  }
}

namespace {

// Gives `f` the with_timeout() chain `chain`: `f` has a timeout pending
// exactly when one of its scopes expired.
void adopt_timeouts(FiberRecord& f, TimeoutScope* chain) noexcept {
  f.timeouts = chain;
  if (TimeoutScope::expired(chain) != nullptr) {
    f.pending |= FiberRecord::kTimeout;
  } else {
    f.pending &= static_cast<std::uint8_t>(~FiberRecord::kTimeout);
  }
}

}  // namespace

// A generator body's with_timeout() scopes belong to the body: between
// resumes they wait in the generator, attached to no fiber (their timers
// still fire, and the body takes the timeout when it is resumed). While it
// runs, the body's chain is spliced onto its consumer's: the body runs
// inside the consumer's scopes, so a consumer's deadline interrupts the
// body's waits too (as a task's cancellation reaches the async generator it
// is iterating in asyncio), and the body's error names whichever scope
// expired first. `body_state` holds the body's chain between resumes and
// the consumer's innermost scope while the body runs: where to cut the
// chain when it yields. Exceptions unwinding the consumer count as
// unwinding for the body, so that interrupts wait for them too.
void on_generator_switch(void** body_state, unsigned consumer_unwinding, bool into_body) noexcept {
  Scheduler* scheduler = Scheduler::current();
  FiberRecord* f = scheduler != nullptr ? scheduler->running() : nullptr;
  if (f == nullptr) return;  // a generator used outside any fiber: no scopes, no interrupts
  if (into_body) {
    f->outer_unwinding = static_cast<std::uint16_t>(f->outer_unwinding + consumer_unwinding);
    auto* body = static_cast<TimeoutScope*>(*body_state);
    TimeoutScope* consumer = f->timeouts;
    *body_state = consumer;
    if (body == nullptr) return adopt_timeouts(*f, consumer);
    TimeoutScope* outermost = body;
    for (;; outermost = outermost->outer) {
      outermost->fiber = f;
      if (outermost->outer == nullptr) break;
    }
    outermost->outer = consumer;
    return adopt_timeouts(*f, body);
  }
  f->outer_unwinding = static_cast<std::uint16_t>(f->outer_unwinding - consumer_unwinding);
  auto* consumer = static_cast<TimeoutScope*>(*body_state);
  TimeoutScope* body = f->timeouts;
  if (body == consumer) {
    body = nullptr;  // no scope of the body's is open
  } else {
    for (TimeoutScope* s = body;; s = s->outer) {
      FIBERLOOP_CHECK(s != nullptr,
                      "generator switch: the body's with_timeout() scopes do not end at its "
                      "consumer's");
      s->fiber = nullptr;
      s->held_by = s == body ? body_state : nullptr;
      if (s->outer == consumer) {
        s->outer = nullptr;
        break;
      }
    }
  }
  *body_state = body;
  adopt_timeouts(*f, consumer);
}

const TimeoutScope* TimeoutScope::expired(const TimeoutScope* innermost) noexcept {
  const TimeoutScope* earliest = nullptr;
  for (const TimeoutScope* s = innermost; s != nullptr; s = s->outer) {
    if (s->fired && (earliest == nullptr || s->deadline <= earliest->deadline)) earliest = s;
  }
  return earliest;
}

}  // namespace fiberloop::internal

namespace fiberloop::this_fiber {

namespace {

// The caller's loop; throws, naming `what`, without one or outside a fiber.
internal::Scheduler& sleeper_loop(const char* what) {
  internal::Scheduler* scheduler = internal::Scheduler::current();
  if (scheduler == nullptr) [[unlikely]]
    internal::throw_no_loop(what);
  (void)scheduler->running_fiber(what);
  return *scheduler;
}

void sleep_on(internal::Scheduler& scheduler, TimePoint when) {
  (void)scheduler.park_until(when, internal::WaitKind::kSleep, when.time_since_epoch().count());
}

}  // namespace

void sleep_until(TimePoint when) { sleep_on(sleeper_loop("this_fiber::sleep_until"), when); }

void sleep_for(Duration duration) {
  internal::Scheduler& scheduler = sleeper_loop("this_fiber::sleep_for");
  sleep_on(scheduler, internal::deadline_from_now(duration));
}

}  // namespace fiberloop::this_fiber
