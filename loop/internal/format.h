// How fiberloop's messages say things, each in one place: a fiber ("fiber 7
// 'name'"), a fiber and its state, and a duration. The fiber formatters are
// async-signal-safe (no allocation), as the stack-overflow report, the stall
// report and failed checks run in signal handlers or on a broken stack.
#pragma once

#include <cstddef>
#include <exception>
#include <iosfwd>
#include <string>
#include <string_view>

#include "loop/internal/fiber_record.h"
#include "loop/options.h"

namespace fiberloop::internal {

// "fiber 7 'name'" (the name only if it has one; cut at 64 characters) into
// `buf`, NUL-terminated. Returns the length written.
std::size_t format_fiber(char* buf, std::size_t cap, FiberId id, std::string_view name) noexcept;
// "fiber 7 'name' (parked)": the fiber and its state.
std::size_t format_fiber_state(char* buf, std::size_t cap, const FiberRecord& f) noexcept;
// "850 us", "250 ms", "12.5 s", "3 min", "forever"; "0 ms" for d <= 0. The
// buffer form allocates nothing (the stall report runs in a signal handler).
std::size_t format_duration(char* buf, std::size_t cap, Duration d) noexcept;
std::string format_duration(Duration d);
// The default exception handler: one line on stderr naming the fiber, where
// it was spawned and what it threw.
void print_fiber_failure(std::exception_ptr error, const FiberInfo& info);
// What a fiber parked on `kind` waits for, with its park site's `detail`
// and `call` (FiberRecord::wait_detail, wait_call): "reading fd 7 in read",
// "sleeping, 2 s to go" (by the loop's clock `now`), "joining fiber 5".
std::string describe_wait(WaitKind kind, std::int64_t detail, const char* call, TimePoint now);
// One line of Loop::dump() for `f`: its state, what it waits on and for how
// long (by the loop's clock `now`), its stack, where it was spawned.
void describe_fiber_line(std::ostream& out, const FiberRecord& f, TimePoint now);

}  // namespace fiberloop::internal
