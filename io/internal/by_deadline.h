// An operation under a stream's deadline (Go's SetDeadline): a labelled
// TimeoutScope at a TimePoint, and a TimeoutError that names the stream.
// For Stream (io/stream.cc) and the TLS handshake (io/tls.cc).
#pragma once

#include <atomic>
#include <stdexcept>
#include <string>

#include "loop/errors.h"
#include "loop/internal/deadline.h"

namespace fiberloop::internal {

// An operation under way under a stream's deadline, on the operation's
// stack: the stream points at it (`*home == this`) so that setting the
// deadline reaches the operation's scope. A stream destroyed meanwhile
// (which wakes the operation) sets `home` to null first, so the operation
// never touches the stream again.
struct DeadlineOp {
  TimeoutScope* scope = nullptr;
  std::atomic<DeadlineOp*>* home = nullptr;
};

// Runs `op()` under the deadline `at` (a labelled TimeoutScope; for
// TimePoint::max(), a scope with no timer): Go's rule, a deadline already
// passed fails it before it starts, even if it could finish at once. While
// `op` runs, `*home` (if given) points at it, so that setting or moving the
// deadline reaches it (TimeoutScope::move_to); `*home` is taken with a
// compare-and-swap, so a second operation in the same direction, from any
// loop, is refused before it touches anything.
// Throws: TimeoutError(message()) when this deadline is what ended `op` (an
//         outer with_timeout's TimeoutError passes through as it is);
//         std::logic_error(busy()) if another operation holds `*home`; what
//         `op` throws.
template <class Message, class Busy, class Op>
auto run_by_deadline(TimePoint at, const char* label, std::atomic<DeadlineOp*>* home,
                     Message message, Busy busy, Op op) -> decltype(op()) {
  if (at != TimePoint::max() && Clock::now() >= at) throw TimeoutError(message());
  TimeoutScope scope(at, label);
  struct Running : DeadlineOp {
    ~Running() {
      if (home != nullptr) home->store(nullptr, std::memory_order_release);
    }
  } running;
  running.scope = &scope;
  if (home != nullptr) {
    DeadlineOp* none = nullptr;
    if (!home->compare_exchange_strong(none, &running, std::memory_order_acq_rel)) {
      throw std::logic_error(busy());
    }
    running.home = home;
  }
  try {
    return op();
  } catch (const TimeoutError&) {
    if (TimeoutScope::expired(&scope) != &scope) throw;
    // (A stream destroyed meanwhile is not asked to describe itself: the
    // scope's own message, its label, stands.)
    if (home != nullptr && running.home == nullptr) throw;
    throw TimeoutError(message());
  }
}

}  // namespace fiberloop::internal
