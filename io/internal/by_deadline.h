// An operation under a stream's deadline (Go's SetDeadline): a labelled
// TimeoutScope at a TimePoint, and a TimeoutError that names the stream.
// For Stream (io/stream.cc) and the TLS handshake (io/tls.cc).
#pragma once

#include <string>

#include "loop/errors.h"
#include "loop/internal/deadline.h"

namespace fiberloop::internal {

// Runs `op()` under the deadline `at` (a labelled TimeoutScope; for
// TimePoint::max(), a scope with no timer): Go's rule, a deadline already
// passed fails it before it starts, even if it could finish at once. While
// `op` runs, the scope is in `*slot` (if a slot is given), so that moving
// the deadline moves it (TimeoutScope::move_to), a deadline set while `op`
// waits included.
// Throws: TimeoutError(message()) when this deadline is what ended `op` (an
//         outer with_timeout's TimeoutError passes through as it is); what
//         `op` throws.
template <class Message, class Op>
auto run_by_deadline(TimePoint at, const char* label, TimeoutScope** slot, Message message, Op op)
    -> decltype(op()) {
  if (at != TimePoint::max() && Clock::now() >= at) throw TimeoutError(message());
  TimeoutScope scope(at, label);
  struct Slot {
    TimeoutScope** slot;
    TimeoutScope* before;  // (a second reader, refused by the I/O, leaves the first's)
    ~Slot() {
      if (slot != nullptr) *slot = before;
    }
  } in_slot{slot, slot != nullptr ? *slot : nullptr};
  if (slot != nullptr) *slot = &scope;
  try {
    return op();
  } catch (const TimeoutError&) {
    if (TimeoutScope::expired(&scope) != &scope) throw;
    throw TimeoutError(message());
  }
}

}  // namespace fiberloop::internal
