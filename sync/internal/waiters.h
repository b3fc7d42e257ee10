// How a sync/ primitive holds its waiters: a node on each waiter's stack
// (Waiter), a FIFO of them (WaitQueue: Event, Mutex, ConditionVariable,
// Semaphore, WaitGroup, Future), and a parked channel operation (ChannelOp:
// Channel and select). A waiter is a fiber of any loop or a plain thread.
//
// The protocol, the same local or shared (sync_home.h):
// - The waiter links its node and parks (releasing a shared primitive's lock).
// - A notifier, holding the primitive, unlinks the node, hands over what the
//   waiter gets (a value, a mutex), marks it notified and wakes it: directly
//   on the waiter's own loop, through that loop's cross-thread queue from
//   anywhere else.
// - Woken by its own loop, the waiter returns without touching the
//   primitive again (it may be gone). Woken from another thread, or ended
//   by an interrupt or its deadline, it takes the lock again: if it was
//   notified meanwhile it accepts what it was given (an interrupt stays
//   pending); if not, it unlinks its node itself.
// A local notifier skips a waiter its own loop has interrupted but not yet
// resumed, so the notification reaches the next waiter. A shared notifier
// cannot see that; the waiter then accepts, as above.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>

#include "loop/internal/fiber_record.h"
#include "loop/internal/intrusive_list.h"
#include "loop/internal/scheduler.h"
#include "loop/internal/waiter.h"
#include "sync/internal/sync_home.h"

namespace fiberloop::internal {

enum class WaitEnd : std::uint8_t { kNotified, kTimedOut, kInterrupted };

// How a wait that its own loop did not end with a notification ended,
// under the primitive again: notified after all (perhaps while the waiter
// took the lock), or `end`. Checks that a fiber was not woken without one.
WaitEnd settle_wait(const Waiter& waiter, WaitEnd end) noexcept;

// block()'s ending, off the fast path: takes the guard again and says how
// the wait ended. Inline, as every use of a SyncGuard: a guard whose
// address reaches no call stays in registers, and its local case folds.
[[gnu::always_inline]] inline WaitEnd finish_block(SyncGuard& guard, SyncHome& home,
                                                   const Waiter& waiter, WaitEnd end) noexcept {
  guard.reacquire(home);
  return settle_wait(waiter, end);
}

// Parks the caller, whose prepared `waiter` the caller has linked under
// `guard`, until it is notified, `deadline` passes (kNever: no deadline) or
// an interrupt comes. Returns kNotified without the guard when the fiber's
// own loop woke it (its notifier is done with the primitive by then: the
// primitive may already be gone); otherwise with the guard held again, the
// node still linked unless notified (the caller unlinks it). A waiter woken
// from another thread takes the lock once, so that its notifier has let go
// of the primitive before the waiter may destroy it.
// Always inline: a frame between the waiting code and the switch costs a
// mispredicted return at every resumption (fiber/internal/context.h).
// `gone`, if given, is set once the primitive has been destroyed meanwhile
// (by its own loop: a Channel): then it is not taken again.
[[gnu::always_inline]] inline WaitEnd block(SyncGuard& guard, SyncHome& home, Waiter& waiter,
                                            TimePoint deadline, WaitKind kind,
                                            const bool* gone = nullptr) {
  const bool shared = guard.shared();
  guard.release();
  WaitEnd end = WaitEnd::kTimedOut;
  if (waiter.fiber != nullptr) [[likely]] {
    Scheduler& scheduler = *waiter.fiber->scheduler;
    if (shared) scheduler.begin_remote_wait();
    // The detail names the primitive (its home's address), so that a dump
    // shows which fibers wait on the same one; none for a group's join,
    // whose detail would be read as a fiber's id.
    const std::intptr_t detail =
        kind == WaitKind::kJoin ? 0 : reinterpret_cast<std::intptr_t>(&home);
    const Scheduler::ParkEnd parked = scheduler.park_waiter(deadline, kind, detail);
    if (shared) scheduler.end_remote_wait();
    switch (parked) {
      case Scheduler::ParkEnd::kWoken:
        if (!waiter.fiber->woken_remotely) [[likely]]
          return WaitEnd::kNotified;
        end = WaitEnd::kNotified;
        break;
      case Scheduler::ParkEnd::kTimedOut:
        break;
      case Scheduler::ParkEnd::kInterrupted:
        end = WaitEnd::kInterrupted;
        break;
    }
  } else if (block_thread(waiter.state, Waiter::kNotified, deadline)) {
    end = WaitEnd::kNotified;
  }
  if (gone != nullptr && *gone) [[unlikely]]
    return settle_wait(waiter, end);
  return finish_block(guard, home, waiter, end);
}

// Throws the interrupt that ended a wait (the waiter has left its list).
[[noreturn]] void throw_interrupted(const char* what);

class WaitQueue {
 public:
  // `kind` is what Loop::dump() says its waiters wait on.
  explicit WaitQueue(WaitKind kind) noexcept : kind_(kind) {}

  SyncHome& home() noexcept { return home_; }
  // Under the guard of home().
  bool empty() const noexcept { return waiters_.empty(); }

  // Under `guard`: parks the caller at the back until notify_one() or
  // notify_all() picks it. Returns: true if notified (with the guard
  // released: the primitive may be gone by now), false if `deadline` came
  // first (the guard held). Throws: Cancelled or TimeoutError if interrupted first (it
  // has left the queue); std::logic_error (`what`) on a loop's thread
  // outside a fiber. `after_link(arg)`, if given, runs once the caller is in
  // the queue, before it parks (a ConditionVariable releases its mutex).
  // Inline: see block().
  [[gnu::always_inline]] bool wait(SyncGuard& guard, TimePoint deadline, const char* what,
                                   void (*after_link)(void*) = nullptr, void* arg = nullptr) {
    guard.reacquire(home_);  // after an earlier wait's notification
    Waiter waiter;
    waiter.prepare(what, /*interruptible=*/true);
    waiters_.push_back(waiter);
    if (after_link != nullptr) run_after_link(waiter, after_link, arg);
    const WaitEnd end = block(guard, home_, waiter, deadline, kind_);
    if (end == WaitEnd::kNotified) [[likely]]
      return true;
    return leave(waiter, end, what);
  }
  // As wait() with no deadline, but interrupts do not end the wait: they stay
  // pending for the fiber's next suspension point. For waits that must end
  // in a known state (a ConditionVariable taking its mutex back).
  void wait_uninterruptible(SyncGuard& guard, const char* what);

  // Under `guard`: wakes the first waiter that can take it. Returns the
  // waiter's caller_identity(), or null if there was none. Inline: a
  // same-loop hand-off (Mutex::unlock) is this and a push to the ready queue.
  const void* notify_one(SyncGuard& guard) noexcept {
    while (!waiters_.empty()) {
      Waiter& w = waiters_.pop_front();
      if (w.passed_by(guard.shared())) continue;
      const void* who = w.who;
      w.notify();
      return who;
    }
    return nullptr;
  }
  // Wakes every waiter, in order.
  void notify_all(SyncGuard& guard) noexcept { notify_all(guard.shared()); }

 private:
  // wait()'s rare paths: after_link() throwing (the waiter leaves); a wait
  // that ended without a notification (returns false or throws).
  static void run_after_link(Waiter& waiter, void (*after_link)(void*), void* arg);
  static bool leave(Waiter& waiter, WaitEnd end, const char* what);
  void notify_all(bool shared) noexcept;

  IntrusiveList<Waiter> waiters_;
  WaitKind kind_;
  SyncHome home_;
};

// Which case of a select() completed; the first channel to claim one wins.
struct SelectState {
  static constexpr std::size_t kNone = ~std::size_t{0};
  static constexpr std::size_t kOver = kNone - 1;  // the select ended without a winner
  std::atomic<std::size_t> winner{kNone};
  std::atomic<std::uint32_t> signal{0};  // a plain thread's futex word (Waiter::thread_word)
  bool claim(std::size_t index) noexcept {
    std::size_t none = kNone;
    return winner.compare_exchange_strong(none, index, std::memory_order_acq_rel);
  }
};

// A parked send or recv, or one case of a select(). A fiber in a select has
// one op per case in several channels' queues at once: the channel that
// claims one (SelectState::claim) completes it; the others skip and drop
// theirs.
// At most 64 bytes: zeroing a bigger one costs a `rep stos` on every
// parked send and recv.
struct ChannelOp : Waiter {
  void* value = nullptr;  // send: the T to move from; recv: the std::optional<T> to fill
  SelectState* select = nullptr;
  std::uint32_t case_index = 0;
  bool closed = false;  // completed by close()
  // Taken off its queue by ~Channel: a select parked there must not touch
  // that channel again (its own loop's; another thread's is the user's race).
  bool channel_gone = false;
  // The hand-off threw (the value's move): `value` now owns that exception
  // (a heap std::exception_ptr, null if even that failed); see fail().
  bool failed = false;

  // Marks the op done (by close(), if `by_close`) and wakes its waiter.
  void complete(bool by_close = false) noexcept {
    closed = by_close;
    if (fiber == nullptr && select != nullptr) return notify_select_thread();
    notify();
  }
  // A plain thread in a select() blocks on its SelectState's word, one for
  // all its cases.
  void notify_select_thread() noexcept;
  // The claimed op's hand-off threw `error`: completes it carrying the
  // error, which its waiter rethrows (throw_if_failed), instead of leaving
  // it claimed and never woken.
  void fail(std::exception_ptr error) noexcept;
};

// After a channel wait: rethrows what a failed hand-off left in `op`.
[[noreturn]] void rethrow_hand_off_failure(ChannelOp& op);
inline void throw_if_failed(ChannelOp& op) {
  if (op.failed) [[unlikely]]
    rethrow_hand_off_failure(op);
}
static_assert(sizeof(ChannelOp) <= 64);

// Parks a select's caller, whose ops name `state`, until a case completes,
// `deadline`, or an interrupt (`shared`: some of its channels are). Inline,
// as block().
[[gnu::always_inline]] inline WaitEnd park_select(SelectState& state, const Waiter& first,
                                                  TimePoint deadline, bool shared) {
  if (first.fiber != nullptr) [[likely]] {
    Scheduler& scheduler = *first.fiber->scheduler;
    if (shared) scheduler.begin_remote_wait();
    const Scheduler::ParkEnd parked = scheduler.park_waiter(deadline, WaitKind::kChannel);
    if (shared) scheduler.end_remote_wait();
    switch (parked) {
      case Scheduler::ParkEnd::kWoken:
        return WaitEnd::kNotified;
      case Scheduler::ParkEnd::kTimedOut:
        return WaitEnd::kTimedOut;
      case Scheduler::ParkEnd::kInterrupted:
        return WaitEnd::kInterrupted;
    }
  }
  return block_thread(state.signal, 1, deadline) ? WaitEnd::kNotified : WaitEnd::kTimedOut;
}

// Pops ops from `queue` until one can be completed now; null if none can.
inline ChannelOp* claim(IntrusiveList<ChannelOp>& queue, bool shared) noexcept {
  while (!queue.empty()) {
    ChannelOp& op = queue.pop_front();
    if (op.passed_by(shared)) continue;
    if (op.select != nullptr && !op.select->claim(op.case_index)) continue;
    return &op;
  }
  return nullptr;
}

}  // namespace fiberloop::internal
