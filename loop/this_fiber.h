// What a fiber does to itself: yield, sleep, and learn its id.
//
//   while (busy()) { step(); fiberloop::this_fiber::yield(); }
//   fiberloop::this_fiber::sleep_for(std::chrono::milliseconds(100));
#pragma once

#include "fiber/internal/require_cxx20.h"  // IWYU pragma: keep

#include "loop/internal/deadline.h"
#include "loop/internal/loop_core.h"
#include "loop/options.h"

namespace fiberloop::this_fiber {

// Moves the calling fiber to the back of the ready queue and runs the others;
// returns when its turn comes again. Inline: the switch compiles into the
// caller (see loop/internal/switch_path.h).
// Throws: Cancelled if the fiber was cancelled; std::logic_error outside a fiber.
inline void yield() {
  internal::LoopCore* core = internal::LoopCore::current();
  if (core == nullptr) [[unlikely]]
    internal::throw_no_loop("this_fiber::yield");
  core->yield();
}

// Parks the calling fiber until `when` has passed (never earlier); the loop
// runs others meanwhile. TimePoint::max() never passes: the fiber waits until
// cancelled (or its with_timeout() expires). A time in the past yields.
// Throws: Cancelled; TimeoutError inside an expired with_timeout();
//         std::logic_error outside a fiber.
inline void sleep_until(TimePoint when) {
  internal::LoopCore* core = internal::LoopCore::current();
  if (core == nullptr) [[unlikely]]
    internal::throw_no_loop("this_fiber::sleep_until");
  core->sleep_until(when);
}

// Parks the calling fiber for `duration`; see sleep_until(). Saturates:
// Duration::max() is forever, a duration <= 0 yields.
inline void sleep_for(Duration duration) { sleep_until(internal::deadline_after(duration)); }

// The calling fiber's id, or 0 outside any fiber.
inline FiberId id() noexcept {
  internal::LoopCore* core = internal::LoopCore::current();
  internal::FiberRecord* f = core != nullptr ? core->running() : nullptr;
  return f != nullptr ? f->id : 0;
}

}  // namespace fiberloop::this_fiber
