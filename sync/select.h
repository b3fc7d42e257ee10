// select: wait on several channel operations at once and complete exactly
// one (Go's select).
//
//   std::optional<Job> job;
//   switch (fiberloop::select(jobs.recv_case(job), quit.recv_case(stop))) {
//     case 0: run(*job); break;
//     case 1: return;
//   }
//   if (auto i = fiberloop::select_for(100ms, results.send_case(r))) ... else timed out
//
// The cases that can complete at once are tried in a random order, as in
// Go, so that a busy channel never starves another ready case (a quit
// channel beside a work queue); if none can, the fiber parks on all of them
// and the first channel to complete one wins. The
// others' channels are left untouched (a losing recv leaves its slot empty;
// a losing send case drops the value send_case() took: keep a copy, or send
// a move-only value with send() after the select, to keep it). A channel
// may be destroyed while a select of its own loop is parked on it: the
// select wakes, as from close(), and touches it no more. A recv case on a closed, drained channel
// completes with its slot empty; a send case on a closed channel throws ChannelClosed.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "loop/internal/deadline.h"
#include "loop/internal/scheduler.h"
#include "loop/options.h"
#include "sync/channel.h"
#include "sync/internal/waiters.h"

namespace fiberloop {
namespace internal {
template <class... Cases>
std::optional<std::size_t> select_until(TimePoint deadline, Cases&... cases);
}  // namespace internal

// A receive from `channel` into `slot`; made by Channel::recv_case().
template <class T>
class RecvCase {
 public:
  RecvCase(Channel<T>& channel, std::optional<T>& slot) : channel_(channel), slot_(slot) {}

 private:
  template <class... Cases>
  friend std::optional<std::size_t> internal::select_until(TimePoint, Cases&...);
  internal::SyncHome& home() noexcept { return channel_.home_; }
  bool try_now(bool shared) { return channel_.try_recv_into(slot_, shared); }
  void enqueue(internal::ChannelOp& op) {
    slot_.reset();
    op.value = &slot_;
    channel_.enqueue_recv(op);
  }
  Channel<T>& channel_;
  std::optional<T>& slot_;
};

// A send of `value` to `channel`; made by Channel::send_case().
template <class T>
class SendCase {
 public:
  SendCase(Channel<T>& channel, T value) : channel_(channel), value_(std::move(value)) {}

 private:
  template <class... Cases>
  friend std::optional<std::size_t> internal::select_until(TimePoint, Cases&...);
  internal::SyncHome& home() noexcept { return channel_.home_; }
  bool try_now(bool shared) { return channel_.try_send_from(value_, shared); }
  void enqueue(internal::ChannelOp& op) {
    op.value = &value_;
    channel_.enqueue_send(op);
  }
  Channel<T>& channel_;
  T value_;
};

namespace internal {

template <class Case>
constexpr bool kIsSend = false;
template <class T>
constexpr bool kIsSend<SendCase<T>> = true;

template <class Fn, class... Cases, std::size_t... I>
std::optional<std::size_t> first_case_where(Fn& fn, std::index_sequence<I...>, Cases&... cases) {
  std::optional<std::size_t> found;
  const auto visit = [&](std::size_t i, auto& c) {
    if (!found && fn(i, c)) found = i;
  };
  (visit(I, cases), ...);
  return found;
}

// Calls fn(i, case) on the cases in order until one call returns true.
// Returns: that case's index, or nullopt if none did.
template <class Fn, class... Cases>
std::optional<std::size_t> first_case_where(Fn fn, Cases&... cases) {
  return first_case_where(fn, std::index_sequence_for<Cases...>{}, cases...);
}

// A number below `n`, from this thread's xorshift32 (Go's cheaprandn: fast
// and good enough to spread choices, not for anything else).
inline std::size_t select_random_below(std::size_t n) noexcept {
  thread_local std::uint32_t state = 0x9e3779b9u;
  state ^= state << 13;
  state ^= state >> 17;
  state ^= state << 5;
  return static_cast<std::size_t>((static_cast<std::uint64_t>(state) * n) >> 32);
}

template <class Fn, class... Cases, std::size_t... I>
bool call_case(std::size_t index, Fn& fn, std::index_sequence<I...>, Cases&... cases) {
  bool done = false;
  ((I == index ? (done = fn(I, cases), 0) : 0), ...);
  return done;
}

// As first_case_where, visiting the cases in a random order (a shuffle, so
// that of any cases for which fn is true each is equally likely first: Go's
// pollorder).
template <class Fn, class... Cases>
std::optional<std::size_t> random_case_where(Fn fn, Cases&... cases) {
  constexpr std::size_t kCases = sizeof...(Cases);
  std::array<std::size_t, kCases> order{};  // order[0] = 0
  for (std::size_t i = 1; i < kCases; ++i) {
    const std::size_t j = select_random_below(i + 1);  // Fisher-Yates, inside out
    order[i] = order[j];
    order[j] = i;
  }
  for (std::size_t index : order) {
    if (call_case(index, fn, std::index_sequence_for<Cases...>{}, cases...)) return index;
  }
  return std::nullopt;
}

// The channels of a select(): each entered (local to this loop, or shared),
// the locks of the shared ones taken together in address order (as Go's
// select does), so that selects over the same channels never deadlock.
template <std::size_t N>
class SelectLocks {
 public:
  // Past `deadline` before every channel's loop shared it, takes nothing:
  // timed_out() says so.
  SelectLocks(const std::array<SyncHome*, N>& homes, TimePoint deadline) : homes_(homes) {
    for (std::size_t i = 0; i < N; ++i) {
      const Entered entered = homes_[i]->enter(Entry::waiting(deadline));
      if (entered == Entered::kTimedOut) {
        timed_out_ = true;
        return;
      }
      shared_[i] = entered == Entered::kShared;
    }
    // A later enter() may have waited, and this loop switched an earlier
    // channel to shared meanwhile.
    for (std::size_t i = 0; i < N; ++i) shared_[i] = shared_[i] || homes_[i]->shared();
    // A closing loop's cancel makes its pass before the locks, as SyncGuard's.
    if (any_of_shared()) Scheduler::pass_before_sync_lock();
    lock();
  }
  bool any_shared() const noexcept { return count_ != 0; }
  bool timed_out() const noexcept { return timed_out_; }
  ~SelectLocks() {
    if (held_) unlock();
  }
  SelectLocks(const SelectLocks&) = delete;
  SelectLocks& operator=(const SelectLocks&) = delete;

  bool shared(std::size_t i) const noexcept { return shared_[i]; }
  void unlock() noexcept {
    for (std::size_t j = 0; j < count_; ++j) locks_[j]->unlock();
    tls_sync_locks_held -= static_cast<int>(count_);
    held_ = false;
  }
  // After a park: channels of this loop may have become shared meanwhile.
  // A channel destroyed meanwhile (`gone(i)`) is left alone.
  template <class Gone>
  void relock(Gone gone) noexcept {
    for (std::size_t i = 0; i < N; ++i) {
      if (gone(i)) {
        homes_[i] = nullptr;
        shared_[i] = false;
      } else {
        shared_[i] = shared_[i] || homes_[i]->shared();
      }
    }
    lock();
  }

 private:
  void lock() noexcept {
    count_ = 0;
    for (std::size_t i = 0; i < N; ++i) {
      if (shared_[i]) locks_[count_++] = &homes_[i]->lock();
    }
    std::sort(locks_.begin(), locks_.begin() + count_);
    count_ = std::unique(locks_.begin(), locks_.begin() + count_) - locks_.begin();
    for (std::size_t j = 0; j < count_; ++j) locks_[j]->lock();
    tls_sync_locks_held += static_cast<int>(count_);
    held_ = true;
  }
  bool any_of_shared() const noexcept {
    for (std::size_t i = 0; i < N; ++i) {
      if (shared_[i]) return true;
    }
    return false;
  }

  std::array<SyncHome*, N> homes_;
  std::array<bool, N> shared_{};
  std::array<SpinLock*, N> locks_{};
  std::size_t count_ = 0;
  bool held_ = false;
  bool timed_out_ = false;
};

// Parks on every case until one completes or `deadline` passes (kNever:
// no deadline). Returns: the winning case, or nullopt on timeout.
template <class... Cases>
std::optional<std::size_t> select_until(TimePoint deadline, Cases&... cases) {
  constexpr std::size_t kCases = sizeof...(Cases);
  static_assert(kCases > 0, "select needs at least one case (Go's empty select blocks for ever)");
  SelectLocks<kCases> locks({&cases.home()...}, deadline);
  if (locks.timed_out()) return std::nullopt;  // a channel's loop did not share it in time
  // First, whatever can complete at once, in a random order.
  if (auto now = random_case_where(
          [&](std::size_t i, auto& c) { return c.try_now(locks.shared(i)); }, cases...)) {
    return now;
  }
  if (deadline <= Clock::now()) return std::nullopt;

  SelectState state;
  std::array<ChannelOp, kCases> ops;
  ops[0].prepare("select", /*interruptible=*/true);
  first_case_where(
      [&](std::size_t i, auto& c) {
        ops[i].fiber = ops[0].fiber;
        ops[i].who = ops[0].who;
        ops[i].park = ops[0].park;
        ops[i].select = &state;
        ops[i].case_index = static_cast<std::uint32_t>(i);
        c.enqueue(ops[i]);
        return false;
      },
      cases...);
  locks.unlock();
  const WaitEnd end = park_select(state, ops[0], deadline, locks.any_shared());
  locks.relock([&ops](std::size_t i) { return ops[i].channel_gone; });
  // Every claim takes the lock of its channel (or runs on this loop), so
  // none is under way: a winner now is final, and none comes later.
  state.claim(SelectState::kOver);
  for (ChannelOp& op : ops) op.unlink();
  locks.unlock();
  const std::size_t winner = state.winner.load(std::memory_order_acquire);
  if (winner == SelectState::kOver) {
    if (end == WaitEnd::kInterrupted) throw_interrupted("select");
    return std::nullopt;
  }
  // A case whose hand-off threw rethrows that; a send case completed by
  // close() throws ChannelClosed.
  throw_if_failed(ops[winner]);
  first_case_where(
      [&](std::size_t i, auto& c) {
        if (i == winner && kIsSend<std::remove_cvref_t<decltype(c)>> && ops[i].closed) {
          throw ChannelClosed();
        }
        return false;
      },
      cases...);
  return winner;
}

}  // namespace internal

// Completes exactly one of `cases`, parking until one can. Returns: its index.
// Throws: ChannelClosed from a send case on a closed channel; Cancelled;
//         TimeoutError; std::logic_error when it must wait on a loop's thread
//         outside a fiber (a plain thread blocks).
template <class... Cases>
std::size_t select(Cases&&... cases) {
  return *internal::select_until(internal::kNever, cases...);
}

// As select(), giving up after `timeout` (in a fiber, measured from its
// loop's timer clock: never early, at most 20 us late). Returns: the index,
// or nullopt if no case completed in time. Any other duration converts
// saturating (to_duration).
template <class... Cases>
std::optional<std::size_t> select_for(Duration timeout, Cases&&... cases) {
  return internal::select_until(internal::deadline_from_now(timeout), cases...);
}
template <OtherDuration D, class... Cases>
std::optional<std::size_t> select_for(D timeout, Cases&&... cases) {
  return select_for(fiberloop::to_duration(timeout), std::forward<Cases>(cases)...);
}

}  // namespace fiberloop
