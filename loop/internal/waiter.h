// A waiter: a fiber of any loop, or a plain thread, waiting for another
// thread (or fiber) to hand it something and wake it. The node lives on the
// waiter's stack; whoever notifies it has unlinked it from its list first.
// sync/internal/waiters.h builds the primitives' wait lists on it; a Task
// joined from another loop or thread uses it too (loop/remote_join.cc).
#pragma once

#include <atomic>
#include <cstdint>

#include "loop/internal/fiber_record.h"
#include "loop/internal/intrusive_list.h"
#include "loop/internal/scheduler.h"
#include "loop/internal/spin_lock.h"

namespace fiberloop::internal {

// The identity of a thread outside any fiber (for caller_identity()).
const void* thread_identity() noexcept;
// The identity of the caller, for a Mutex's owner: its fiber, or, outside
// any fiber, its thread.
inline const void* caller_identity() noexcept {
  Scheduler* const scheduler = Scheduler::current();
  FiberRecord* const fiber = scheduler != nullptr ? scheduler->running() : nullptr;
  if (fiber != nullptr) [[likely]]
    return fiber;
  return thread_identity();
}

// The wake-up half of a notification, copied out of the Waiter when it is
// marked: once marked, the waiter may leave at any moment (interrupted, it
// sees the mark), so the wake-up touches only the fiber's record (which
// outlives its waits) or the plain thread's futex word.
struct Wake {
  FiberRecord* fiber = nullptr;
  Scheduler* scheduler = nullptr;
  std::uint32_t park = 0;
  std::atomic<std::uint32_t>* word = nullptr;  // a plain thread's

  void run() const noexcept {
    if (fiber == nullptr) return wake_word();
    if (scheduler == Scheduler::current()) [[likely]] {
      // On the fiber's own thread the notifier ran since it parked: parked
      // means parked in this wait, or it was interrupted meanwhile.
      if (fiber->state == FiberState::kParked) scheduler->wake(*fiber);
    } else if (scheduler != nullptr) {  // null: its loop is gone (an abandoned fiber)
      scheduler->remote_wake(*fiber, park);
    }
  }
  void wake_word() const noexcept;
};

// A waiter's node, on its stack. `state` goes from kWaiting to kNotified
// (the notifier has unlinked the node and handed it what it waits for,
// under the primitive's lock or on its loop) and, for a plain thread, to
// kWoken once the notifier has let go (the thread's futex word).
struct Waiter : ListHook<> {
  static constexpr std::uint32_t kWaiting = 0;
  static constexpr std::uint32_t kNotified = 1;
  static constexpr std::uint32_t kWoken = 2;

  FiberRecord* fiber = nullptr;  // null: a plain thread, blocked on `state`
  const void* who = nullptr;     // caller_identity() of the waiter (a Mutex's next owner)
  std::uint32_t park = 0;        // fiber->park_seq for the park it waits in
  std::atomic<std::uint32_t> state{kWaiting};

  // Fills in the caller: its fiber, or its thread. Checks, first, that it
  // may wait: throws a pending Cancelled or TimeoutError when
  // `interruptible`; std::logic_error naming `what` on a loop's thread
  // outside a fiber (a wait there would block the loop).
  [[gnu::always_inline]] void prepare(const char* what, bool interruptible) {
    Scheduler* const scheduler = Scheduler::current();
    FiberRecord* const self = scheduler != nullptr ? scheduler->running() : nullptr;
    if (self == nullptr) [[unlikely]]
      return prepare_thread(scheduler, what);
    if (interruptible) scheduler->deliver_interrupt(*self);
    fiber = self;
    who = self;
    park = self->park_seq;
  }
  // prepare() outside any fiber: a plain thread, or an error.
  void prepare_thread(const Scheduler* scheduler, const char* what);

  // The notifier, holding the primitive, after unlinking the node and
  // handing over what the waiter gets: marks it notified, and returns the
  // wake-up to make once it lets go.
  Wake mark() noexcept {
    Wake wake{fiber, fiber != nullptr ? fiber->scheduler : nullptr, park,
              fiber == nullptr ? &state : nullptr};
    state.store(kNotified, std::memory_order_release);
    return wake;
  }
  // mark() and wake at once: on a local primitive (nothing runs until the
  // notifier is done), or where the waiter takes the lock again anyway.
  // Inline for a fiber of this thread's loop, the same-loop hand-off.
  [[gnu::always_inline]] void notify() noexcept {
    if (fiber != nullptr && fiber->scheduler == Scheduler::current()) [[likely]] {
      FiberRecord& f = *fiber;
      state.store(kNotified, std::memory_order_release);
      if (f.state == FiberState::kParked) f.scheduler->wake(f);  // see Wake::run
      return;
    }
    notify_elsewhere();
  }
  void notify_elsewhere() noexcept;  // a plain thread, or a fiber of another loop

  // Whether a notifier must pass it by. Local (`shared` false): its fiber
  // is no longer parked on it (interrupted: it leaves by itself, and the
  // notification goes to the next waiter). Shared: its fiber was abandoned
  // by its loop's shutdown and will never take what it would be handed.
  bool passed_by(bool shared) const noexcept {
    if (!shared) return fiber->state != FiberState::kParked;
    return fiber != nullptr && fiber->done_flag.load(std::memory_order_acquire);
  }
  bool was_notified() const noexcept { return state.load(std::memory_order_acquire) != kWaiting; }
};

// Runs fn(arg) on `target`'s thread, between two of its fibers' steps (a
// RemoteItem in its cross-thread queue, run even while it closes), and waits
// until it has: a fiber parks, uninterruptibly (an interrupt meanwhile waits
// for its next suspension point); a loop's thread outside any fiber keeps
// answering its own queue (so two loops asking each other at once both get
// through); a plain thread blocks. Requires: `target` is another thread's
// loop, and runs (or will).
void call_on_loop(Scheduler& target, void (*fn)(void*) noexcept, void* arg);
// call_on_loop() on a loop that may be gone or closing by now: runs fn(arg)
// there if `target` is live (with `serial` nonzero, still the loop that had
// that serial) when asked, checked and posted in one step (post_if_live).
// Returns: whether it ran it.
bool call_on_loop_if_live(Scheduler* target, std::uint64_t serial, void (*fn)(void*) noexcept,
                          void* arg);
// call_on_loop_if_live() for a fiber that may give up waiting: where the
// operation that asks may throw Cancelled or TimeoutError anyway (a cancel
// reaches a fiber at any suspension point, as asyncio's reaches a task at
// any await), or has a deadline of its own (`deadline`, an Event's
// wait_until; kNever: none). An interrupt, or the deadline, that comes
// before `target` takes the question withdraws it (`target` frees it
// unanswered when it comes to it); one that comes after waits for the
// answer (fn is under way there), and an interrupt then stays pending. So
// a loop that is busy, or that exists but no longer runs, keeps no fiber
// past its timeout, its deadline or its cancel. A plain thread blocks,
// and withdraws the question at `deadline` in the same way; a loop's
// thread outside any fiber calls call_on_loop_if_live() (no deadline).
// Returns: kAnswered (fn ran there), kGone (as call_on_loop_if_live()'s
//          false), kTimedOut (`deadline` passed first; fn did not run).
// Throws: Cancelled, TimeoutError (withdrawn for it; fn did not run).
enum class Asked : std::uint8_t { kAnswered, kGone, kTimedOut };
Asked ask_loop_if_live(Scheduler* target, std::uint64_t serial, void (*fn)(void*) noexcept,
                       void* arg, TimePoint deadline = kNever);

// Blocks a plain thread until `word` is at least `until` or `deadline`
// passes. Returns: whether it got there.
bool block_thread(std::atomic<std::uint32_t>& word, std::uint32_t until, TimePoint deadline);
// Wakes a plain thread blocked on `word` (which may be gone by now: a futex
// wake only names the address).
void wake_thread(std::atomic<std::uint32_t>& word) noexcept;

}  // namespace fiberloop::internal
