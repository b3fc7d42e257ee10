// Signals as loop events: a fiber waits for SIGINT/SIGTERM like any other
// event, and shuts its program down in plain code.
//
//   spawn([&] { fiberloop::wait_signal({SIGINT, SIGTERM}); listener.close(); });
#pragma once

#include "fiber/internal/require_cxx20.h"  // IWYU pragma: keep

#include <initializer_list>

namespace fiberloop {

// Blocks `signals` for the calling thread (threads started later inherit
// that, as run_blocking()'s workers do) and parks the calling fiber until one
// of them arrives, through a signalfd. Returns: the signal's number.
// Throws: std::system_error if the signalfd cannot be made; Cancelled;
//         TimeoutError; std::logic_error outside a fiber.
int wait_signal(std::initializer_list<int> signals);

}  // namespace fiberloop
