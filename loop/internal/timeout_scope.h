// The state of one with_timeout() call: a timer, and a link in the fiber's
// chain of open scopes (innermost first). Lives on the fiber's stack.
#pragma once

#include <source_location>

#include "loop/internal/fiber_record.h"
#include "loop/internal/timer_heap.h"
#include "loop/options.h"

namespace fiberloop::internal {

class TimeoutScope : public TimerNode {
 public:
  // Opens a scope on the running fiber whose deadline is `timeout` from now.
  // Throws: std::logic_error outside a fiber.
  TimeoutScope(Duration timeout, std::source_location where);
  // Closes it: the timer goes, and an expired scope stops interrupting.
  ~TimeoutScope();
  TimeoutScope(const TimeoutScope&) = delete;
  TimeoutScope& operator=(const TimeoutScope&) = delete;

  // The expired scope with the earliest deadline among `innermost` and its
  // outer scopes, or null: the one a TimeoutError names.
  static const TimeoutScope* expired(const TimeoutScope* innermost) noexcept;

  Duration timeout;
  TimePoint deadline;
  std::source_location where;
  FiberRecord* fiber;
  TimeoutScope* outer;
  bool fired = false;
};

}  // namespace fiberloop::internal
