// Stack overflow diagnosis: a SIGSEGV handler, on an alternate signal stack,
// that recognises a fault in a fiber stack's guard page and says so before
// aborting, instead of leaving a bare "Segmentation fault". Any other SIGSEGV
// goes to the handler that was installed before (or the default action).
#pragma once

#include <cstddef>

namespace fiberloop::internal {

// Describes the fiber running on this thread into `buf` (NUL-terminated),
// e.g. "fiber 7 'worker'". Must be async-signal-safe: no allocation, no locks.
using FiberDescriber = void (*)(char* buf, std::size_t cap);

// Installs the handler (once per process) and this thread's alternate signal
// stack (once per thread). Called by each thread's StackPool.
void install_overflow_guard() noexcept;

// Releases this thread's alternate signal stack (at thread exit).
void remove_overflow_guard() noexcept;

// Set by the loop: how to name the running fiber in the report.
void set_fiber_describer(FiberDescriber describer) noexcept;

}  // namespace fiberloop::internal
