// Interrupts and deadlines in a fiber: with_timeout()'s scope, how an
// interrupt comes out of a suspension point, and this_fiber's sleeps.
#include <string>

#include "loop/errors.h"
#include "loop/internal/deadline.h"
#include "loop/internal/format.h"
#include "loop/internal/scheduler.h"
#include "loop/this_fiber.h"

namespace fiberloop::internal {

void Scheduler::throw_interrupt(FiberRecord& self) {
  if (self.pending & FiberRecord::kCancel) {
    if (Scheduler& loop = *self.loop; loop.closing_) {
      // Delivered again at every suspension point, and only after a pass
      // through the ready queue: a fiber that catches it in a loop still
      // comes back to the run loop, which abandons it (loop/shutdown.cc).
      loop.make_ready(self);
      loop.suspend(self);
    } else {
      self.pending &= static_cast<std::uint8_t>(~FiberRecord::kCancel);
    }
    throw fiberloop::Cancelled{};
  }
  const TimeoutScope* scope = TimeoutScope::expired(self.timeouts);
  std::string what = "with_timeout: ";
  if (scope != nullptr) {
    what += format_duration(scope->timeout) + " elapsed (the timeout set at " +
            scope->where.file_name() + ":" + std::to_string(scope->where.line()) + ")";
  } else {
    what += "deadline passed";
  }
  throw fiberloop::TimeoutError(what);
}

TimeoutScope::TimeoutScope(Duration timeout, std::source_location where)
    : timeout(timeout),
      deadline(deadline_after(timeout)),
      where(where),
      fiber(&running_fiber_or_throw("with_timeout")),
      outer(fiber->timeouts) {
  fire = [](TimerNode* node) {
    auto& scope = *static_cast<TimeoutScope*>(node);
    scope.fired = true;
    scope.fiber->loop->interrupt(*scope.fiber, FiberRecord::kTimeout);
  };
  fiber->loop->add_timer(*this, deadline);
  fiber->timeouts = this;
}

TimeoutScope::~TimeoutScope() {
  fiber->loop->remove_timer(*this);
  fiber->timeouts = outer;
  if (fired && expired(outer) == nullptr) {
    fiber->pending &= static_cast<std::uint8_t>(~FiberRecord::kTimeout);
  }
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

void sleep_until(TimePoint when) {
  internal::Scheduler* scheduler = internal::Scheduler::current();
  if (scheduler == nullptr) [[unlikely]]
    internal::throw_no_loop("this_fiber::sleep_until");
  (void)scheduler->park_until(when, internal::WaitKind::kSleep, when.time_since_epoch().count());
}

void sleep_for(Duration duration) { sleep_until(internal::deadline_after(duration)); }

}  // namespace fiberloop::this_fiber
