// What a fiber does to itself: yield, and learn its id.
//
//   while (busy()) { step(); fiberloop::this_fiber::yield(); }
#pragma once

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

// The calling fiber's id, or 0 outside any fiber.
inline FiberId id() noexcept {
  internal::LoopCore* core = internal::LoopCore::current();
  internal::FiberRecord* f = core != nullptr ? core->running() : nullptr;
  return f != nullptr ? f->id : 0;
}

}  // namespace fiberloop::this_fiber
