// with_timeout()'s scope: a timer, and a link in the running fiber's chain
// of open scopes. Opening and closing one that does not fire is inline, in
// the caller's frame (with no later timer in the loop, an append to the
// timer heap and a pop); the rest is in loop/timeout.cc.
#pragma once

#include <cstdint>
#include <source_location>

#include "loop/internal/deadline.h"
#include "loop/internal/scheduler.h"
#include "loop/options.h"

namespace fiberloop::internal {

// The state of one with_timeout() call (loop/timeout.cc): a timer, and a
// link in the fiber's chain of open scopes (innermost first). On the fiber's
// stack.
class TimeoutScope : public TimerNode {
 public:
  // Opens a scope on the running fiber whose deadline is `timeout` from now.
  // Throws: std::logic_error outside a fiber; std::bad_alloc (the timer heap
  // grows).
  TimeoutScope(Duration timeout, std::source_location where);
  // Opens a scope whose deadline is `deadline`, a TimePoint; its
  // TimeoutError says "<label> has passed" (a stream's deadline: io/stream.cc).
  // `label` is a string literal (null: the errors say "with_timeout").
  // Throws: std::logic_error outside a fiber; std::bad_alloc.
  TimeoutScope(TimePoint deadline, const char* label);
  // Closes it: the timer goes, and an expired scope stops interrupting.
  ~TimeoutScope();
  TimeoutScope(const TimeoutScope&) = delete;
  TimeoutScope& operator=(const TimeoutScope&) = delete;

  // Moves the deadline of a scope that has not fired: `deadline` may be
  // past (it fires at the loop's next look at the timers) or never
  // (TimePoint::max()). Throws: std::bad_alloc.
  void move_to(TimePoint deadline);

  // The expired scope with the earliest deadline among `innermost` and its
  // outer scopes, or null: the one a TimeoutError names.
  static const TimeoutScope* expired(const TimeoutScope* innermost) noexcept;

  Duration timeout;
  TimePoint deadline;
  std::source_location where;
  const char* label = nullptr;  // set: a deadline scope, named by it
  Scheduler* scheduler;         // whose timer heap holds it
  std::uint64_t serial;         // and that loop's serial (it may be gone: ~TimeoutScope)
  FiberRecord* fiber;           // the fiber running the code in it; null while that code is a
                                // generator body between resumes (see loop/timeout.cc)
  TimeoutScope* outer;
  // Of the innermost scope of a generator body between fibers: the
  // generator's slot that keeps the body's chain. A scope that ends while
  // the body runs outside any fiber passes the slot to its outer scope.
  void** held_by = nullptr;
  bool fired = false;
  // What the fiber was parked on when the scope fired (kNothing: it was not
  // parked), for the TimeoutError: "... while reading fd 7 in read". The
  // other two are set with it, and read only then: opening a scope, on the
  // hot path, stores nothing more than the one byte beside `fired`.
  WaitKind fired_on = WaitKind::kNothing;
  std::int64_t fired_detail;
  const char* fired_call;

 private:
  // Both constructors' end: links the scope into the running fiber's chain
  // and queues its timer. `what` names the call in the error outside a fiber.
  void open(const char* what);
  // The destructor's other cases: a scope that fired, a generator body's,
  // one whose loop is gone or not this thread's.
  void close_slow() noexcept;
  // The timer's callback: marks the scope expired and interrupts its fiber.
  static void fire_scope(TimerNode* node) noexcept;
};

inline TimeoutScope::TimeoutScope(Duration duration, std::source_location site)
    : timeout(duration), deadline(deadline_from_now(duration)), where(site) {
  open("with_timeout");
}

inline TimeoutScope::TimeoutScope(TimePoint until, const char* name)
    : timeout(Duration::zero()),  // said only for with_timeout's scopes
      deadline(until),
      label(name) {
  open(name != nullptr ? name : "with_timeout");
}

[[gnu::always_inline]] inline void TimeoutScope::open(const char* what) {
  Scheduler* const here = Scheduler::current();
  if (here == nullptr) [[unlikely]]
    throw_no_loop(what);
  FiberRecord& self = here->running_fiber(what);
  fiber = &self;
  outer = self.timeouts;
  scheduler = here;
  serial = here->serial();
  fire = &fire_scope;
  here->add_timer(*this, deadline);
  self.timeouts = this;
}

inline TimeoutScope::~TimeoutScope() {
  // A scope that did not fire, closed by its fiber on its loop: the timer
  // goes and the chain is what it was. (A later loop of this thread may sit
  // at the same address: the serial tells them apart.)
  if (Scheduler::current() == scheduler && fiber != nullptr && !fired &&
      scheduler->serial() == serial) [[likely]] {
    scheduler->remove_timer(*this);
    fiber->timeouts = outer;
    return;
  }
  close_slow();
}

}  // namespace fiberloop::internal
