// FIBERLOOP_CHECK: an internal invariant, checked in every build. A broken
// one stops the process at its cause: file, line, the condition, what it
// guards, and the fiber running on the thread (named by the loop, which
// installs a describer), then abort(). Never compiled out (marl's and
// Boost.Fiber's asserts vanish in release builds; ours do not), so each one
// is a load and a predictable branch on the path it guards.
#pragma once

#include <cstddef>

// Checks `condition`; if false, reports `message` (what the check guards, in
// words: "wake: the fiber is not parked") and aborts.
#define FIBERLOOP_CHECK(condition, message)                                         \
  do {                                                                              \
    if (!(condition)) [[unlikely]]                                                  \
      ::fiberloop::internal::check_failed(#condition, message, __FILE__, __LINE__); \
  } while (false)

namespace fiberloop::internal {

// Prints the failed check and the running fiber to stderr, then aborts.
// Async-signal-safe (write(2) only), so a check may fail anywhere.
// Async-signal-safe writes to stderr (write(2), numbers formatted by hand):
// for the failed-check report and the stack-overflow handler.
void write_stderr(const char* s) noexcept;
void write_stderr_number(std::size_t v) noexcept;

[[noreturn]] void check_failed(const char* condition, const char* message, const char* file,
                               int line, const char* detail = nullptr) noexcept;

// Describes the fiber running on this thread into `buf` (NUL-terminated),
// e.g. "fiber 7 'worker'". Async-signal-safe: no allocation, no
// locks. The loop installs one; without it, checks and the stack-overflow
// report say "a fiber".
using FiberDescriber = void (*)(char* buf, std::size_t cap);
void set_fiber_describer(FiberDescriber describer) noexcept;
// Fills `buf` through the installed describer, or leaves it as it is.
void describe_running_fiber(char* buf, std::size_t cap) noexcept;

}  // namespace fiberloop::internal
