// An operation under a stream's deadline (Go's SetDeadline): a labelled
// TimeoutScope at a TimePoint, and a TimeoutError that names the stream.
// For Stream (io/stream.cc) and the TLS handshake (io/tls.cc).
#pragma once

#include <atomic>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "io/stream.h"  // StreamDirection
#include "loop/errors.h"
#include "loop/internal/deadline.h"
#include "loop/internal/scheduler.h"
#include "loop/internal/timeout_scope.h"

namespace fiberloop::internal {

// An operation under way in one direction of a stream, on the operation's
// stack: the direction points at it (`home->op == this`) so that setting the
// deadline reaches the operation's scope. A stream that lets go of the
// operation (destroyed, or assigned to) sets `home` to null first, on the
// operation's own loop (Stream::end_operations), so the operation never touches
// the stream again.
struct DeadlineOp {
  TimeoutScope* scope = nullptr;
  StreamDirection* home = nullptr;
};

// What a direction's `op` holds while an operation claims it and names its
// loop there: whoever reads the loop waits until the operation is published.
inline DeadlineOp* claiming() noexcept {
  static DeadlineOp marker;
  return &marker;
}

// The message refusing a second operation in `direction` (`busy`), saying
// so when the holder was abandoned by its loop's shutdown: it never ends,
// and only letting go of it (destroying or assigning over the stream)
// frees the direction. Not taken over: on io_uring its kernel operation
// may still be under way until the loop's ring goes, and a TLS record may
// be half written.
std::string refusal(const StreamDirection& direction, std::string busy);

// Throws std::system_error (EBADF) for `op` ("read_exact"), whose stream
// let go of it between two of its calls: the stream may be gone.
[[noreturn]] void throw_let_go(const char* op);

// Runs `op()` (or `op(self)`, given the operation's own DeadlineOp: an
// operation of several calls checks `self.home` between them) under a
// deadline: `home`'s (read once `home` is claimed, so a
// setter either sees the operation or the operation sees the new deadline),
// or `at` without a home. A labelled TimeoutScope (for TimePoint::max(), a
// scope with no timer); Go's rule, a deadline already passed fails it
// before it starts, even if it could finish at once. While `op` runs,
// `home->op` points at it, so that setting or moving the deadline reaches it
// (TimeoutScope::move_to), and `home->loop` names the loop running it. The
// claim is a compare-and-swap, so a second operation in the same direction,
// from any loop, is refused before it touches anything.
// Throws: TimeoutError(message()) when this deadline is what ended `op` (an
//         outer with_timeout's TimeoutError passes through as it is);
//         std::logic_error(busy()) if another operation holds `home`; what
//         `op` throws.
template <class Message, class Busy, class Op>
auto run_by_deadline(TimePoint at, const char* label, StreamDirection* home, Message message,
                     Busy busy, Op op) {
  struct Running : DeadlineOp {
    ~Running() {
      if (home != nullptr) home->op.store(nullptr, std::memory_order_release);
    }
  } running;
  if (home != nullptr) {
    DeadlineOp* none = nullptr;
    if (!home->op.compare_exchange_strong(none, claiming(), std::memory_order_seq_cst))
        [[unlikely]] {
      throw std::logic_error(refusal(*home, busy()));
    }
    running.home = home;  // from here on, ~Running lets go of it
    Scheduler* here = Scheduler::current();
    const std::uint64_t serial = here != nullptr ? here->serial() : 0;
    if (home->loop.load(std::memory_order_relaxed) != here) [[unlikely]] {
      home->loop.store(here, std::memory_order_relaxed);
    }
    if (home->serial.load(std::memory_order_relaxed) != serial) [[unlikely]] {
      home->serial.store(serial, std::memory_order_relaxed);
    }
    at = home->deadline.load(std::memory_order_seq_cst);
  }
  if (at != TimePoint::max() && Clock::now() >= at) throw TimeoutError(message());
  TimeoutScope scope(at, label);
  running.scope = &scope;
  if (home != nullptr) home->op.store(&running, std::memory_order_release);  // (names the loop)
  try {
    if constexpr (std::is_invocable_v<Op, const DeadlineOp&>) {
      return op(static_cast<const DeadlineOp&>(running));  // (it may look at `home`)
    } else {
      return op();
    }
  } catch (const TimeoutError&) {
    if (TimeoutScope::expired(&scope) != &scope) throw;
    // (A stream destroyed meanwhile is not asked to describe itself: the
    // scope's own message, its label, stands.)
    if (home != nullptr && running.home == nullptr) throw;
    throw TimeoutError(message());
  }
}

// Runs `reach(op, arg)` for the operation under way in `dir`, on the thread
// of the loop running it, which is then between two steps of its fibers
// (the operation is parked, or about to resume): here if that is this
// thread, else by asking that loop (call_on_loop_if_live), which the caller
// waits for. Does nothing if no operation is under way. If its loop is gone
// (the operation was abandoned with its fiber, and never resumes), does
// nothing either, or, with `free_abandoned` (the stream lets go of it),
// frees the direction.
// `reach` may throw only on this thread's own loop; asked of another loop,
// what it throws is caught there and rethrown here.
// Inline for the common case, no operation under way: a stream is moved
// and destroyed several times on its way from accept() into a fiber, and
// each time it looks at both directions.
void reach_operation_under_way(StreamDirection& dir, void (*reach)(DeadlineOp& op, void* arg),
                               void* arg, bool free_abandoned);
inline void reach_operation(StreamDirection& dir, void (*reach)(DeadlineOp& op, void* arg),
                            void* arg, bool free_abandoned = false) {
  if (dir.op.load(std::memory_order_seq_cst) == nullptr) return;
  reach_operation_under_way(dir, reach, arg, free_abandoned);
}

}  // namespace fiberloop::internal
