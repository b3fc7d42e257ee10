// What a fiber does to itself: yield, sleep, and learn its id.
//
//   while (busy()) { step(); fiberloop::this_fiber::yield(); }
//   fiberloop::this_fiber::sleep_for(std::chrono::milliseconds(100));
#pragma once

#include "loop/internal/scheduler.h"
#include "loop/options.h"

namespace fiberloop::this_fiber {

// Moves the calling fiber to the back of the ready queue and runs the others;
// returns when its turn comes again. Inline: the switch compiles into the
// caller (see loop/internal/switch_path.h).
// Throws: Cancelled if the fiber was cancelled; TimeoutError inside an
//         expired with_timeout(); std::logic_error outside a fiber.
[[gnu::always_inline]] inline void yield() {
  internal::Scheduler* scheduler = internal::Scheduler::current();
  if (scheduler == nullptr) [[unlikely]]
    internal::throw_no_loop("this_fiber::yield");
  scheduler->yield();
}

// Parks the calling fiber until `when` has passed (never earlier); the loop
// runs others meanwhile. TimePoint::max() never passes: the fiber waits until
// cancelled (or its with_timeout() expires). A time in the past yields.
// Throws: Cancelled; TimeoutError inside an expired with_timeout();
//         std::logic_error outside a fiber.
void sleep_until(TimePoint when);

// Parks the calling fiber for `duration`, measured from the loop's timer
// clock (never early, at most 20 us late; loop/internal/timer_clock.h); see
// sleep_until(). Saturates: Duration::max() is forever, a duration <= 0
// yields. Any other duration converts saturating (to_duration):
// sleep_for(std::chrono::hours::max()) is forever too.
void sleep_for(Duration duration);
template <OtherDuration D>
void sleep_for(D duration) {
  sleep_for(fiberloop::to_duration(duration));
}

// The calling fiber's id, or 0 outside any fiber.
inline FiberId id() noexcept {
  internal::Scheduler* scheduler = internal::Scheduler::current();
  internal::FiberRecord* f = scheduler != nullptr ? scheduler->running() : nullptr;
  return f != nullptr ? f->id : 0;
}

}  // namespace fiberloop::this_fiber
