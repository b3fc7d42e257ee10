// with_timeout: a deadline for everything a piece of code waits on.
//
//   std::string reply = fiberloop::with_timeout(std::chrono::seconds(2), [&] {
//     return read_reply(stream);   // any sleep, join, wait or I/O inside
//   });                            // throws TimeoutError after 2 s
#pragma once

#include <functional>
#include <source_location>
#include <type_traits>
#include <utility>

#include "loop/errors.h"
#include "loop/internal/deadline.h"
#include "loop/internal/timeout_scope.h"
#include "loop/options.h"

namespace fiberloop {

// Runs `fn` in the calling fiber with a deadline `timeout` from now (from
// the loop's timer clock: never early, at most 20 us late; see
// loop/internal/timer_clock.h). Once the deadline has passed, every
// suspension point inside `fn` (yield, sleep, join, any wait, any parked
// I/O) throws TimeoutError, until `fn` is left: code that catches it cannot
// go on waiting. A fiber parked at the deadline wakes at once. Timeouts
// nest: the earliest deadline wins, and the error names the scope that
// expired (its duration and where it was set). A timeout that does not fire
// costs one timer insert and one removal. Code that never suspends is not
// interrupted.
// Returns: what `fn` returns.
// Throws: TimeoutError; what `fn` throws; std::logic_error outside a fiber.
template <class F>
auto with_timeout(Duration timeout, F&& fn,
                  std::source_location where = std::source_location::current())
    -> std::invoke_result_t<F> {
  internal::TimeoutScope scope(timeout, where);
  return std::invoke(std::forward<F>(fn));
}
// Any other duration converts saturating (to_duration): with_timeout(
// std::chrono::seconds::max(), fn) never expires.
template <OtherDuration D, class F>
auto with_timeout(D timeout, F&& fn, std::source_location where = std::source_location::current())
    -> std::invoke_result_t<F> {
  return with_timeout(fiberloop::to_duration(timeout), std::forward<F>(fn), where);
}

}  // namespace fiberloop
