// Stack overflow diagnosis: a SIGSEGV handler, on an alternate signal stack,
// that recognises a fault in a fiber stack's guard page and says so before
// aborting, instead of leaving a bare "Segmentation fault". Any other SIGSEGV
// goes to the handler that was installed before (or the default action).
#pragma once

#include <cstddef>

namespace fiberloop::internal {

// Installs the handler (once per process) and this thread's alternate signal
// stack (once per thread). Called by each thread's StackPool.
void install_overflow_guard() noexcept;

// Releases this thread's alternate signal stack (at thread exit).
void remove_overflow_guard() noexcept;

// The report names the running fiber through the describer the loop
// installs (fiber/internal/check.h).

}  // namespace fiberloop::internal
