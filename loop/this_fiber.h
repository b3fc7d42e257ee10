// What a fiber does to itself: yield, learn its id (sleep comes with timers).
#pragma once

#include "loop/options.h"

namespace fiberloop::this_fiber {

// Moves the calling fiber to the back of the ready queue and runs the others;
// returns when its turn comes again.
// Throws: Cancelled if the fiber was cancelled; std::logic_error outside a fiber.
void yield();

// The calling fiber's id, or 0 outside any fiber.
FiberId id() noexcept;

}  // namespace fiberloop::this_fiber
