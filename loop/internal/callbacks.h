// Callbacks scheduled with call_soon/call_later/call_at: run on the loop
// thread, between fibers, in the order they became due. Slots recycle
// through a free list (their addresses stay put: the timer heap points at
// them), each with a generation, so a TimerHandle to a slot since reused
// does nothing. The table is shared with the handles, so a handle that
// outlives its loop finds `owner` null instead of freed memory.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "fiber/internal/sanitizers.h"  // RelaxedCounter
#include "loop/internal/deadline.h"
#include "loop/timer_handle.h"

namespace fiberloop::internal {

class Callbacks;
class CallbackTable;
class Scheduler;
class TimerHeap;

struct Callback : TimerNode {
  enum class State : std::uint8_t { kFree, kSoon, kTimer, kCancelled };
  std::function<void()> fn;
  CallbackTable* table = nullptr;
  std::uint32_t index = 0;
  std::uint32_t generation = 0;
  std::uint32_t next_free = 0;
  State state = State::kFree;
};

class CallbackTable {
 public:
  static constexpr std::uint32_t kNone = ~std::uint32_t{0};
  explicit CallbackTable(Callbacks* owner) : owner(owner) {}

  // A slot holding `fn`, in state kFree (the caller sets the state).
  Callback& allocate(std::function<void()> fn);
  // Empties the slot; handles to it go stale.
  void release(Callback& c) noexcept;
  Callback& operator[](std::uint32_t index) noexcept { return slots_[index]; }
  std::uint32_t size() const noexcept { return static_cast<std::uint32_t>(slots_.size()); }

  Callbacks* owner;  // null once the loop is gone

 private:
  std::deque<Callback> slots_;  // a deque: growing never moves a slot
  std::uint32_t free_head_ = kNone;
};

class Callbacks {
 public:
  Callbacks(Scheduler& scheduler, TimerHeap& timers);
  ~Callbacks();
  Callbacks(const Callbacks&) = delete;
  Callbacks& operator=(const Callbacks&) = delete;

  // Loop::call_soon and call_at (loop/callbacks.cc). While the loop is
  // closing, `fn` is destroyed at once and the handle is inactive.
  // Throws: std::logic_error from another thread.
  TimerHandle call_soon(std::function<void()> fn);
  TimerHandle call_at(TimePoint when, std::function<void()> fn);
  // Queues a callback posted from another thread (now on this thread).
  void call_soon_posted(std::function<void()>& posted);
  // TimerHandle::cancel. Throws: std::logic_error from another thread.
  void cancel(std::uint32_t slot, std::uint32_t generation);

  // Whether callbacks are due (queued for the next pass).
  bool any_due() const noexcept { return !due_.empty(); }
  // Runs the callbacks due when it was called; those they queue wait for
  // the next pass. A throwing callback goes to the exception handler.
  void run_due();
  // Destroys every pending callback without running it (shutdown).
  void discard() noexcept;
  // Callbacks run so far. Any thread (the stall watchdog).
  std::uint64_t run_count() const noexcept { return run_count_.get(); }
  // Whether a callback is running now (for the stall report). Any thread.
  bool in_callback() const noexcept;

 private:
  friend class fiberloop::TimerHandle;
  bool active(std::uint32_t slot, std::uint32_t generation) const noexcept;

  Scheduler& scheduler_;
  TimerHeap& timers_;
  std::shared_ptr<CallbackTable> table_;
  std::vector<std::uint32_t> due_;        // due callbacks, in order
  std::vector<std::uint32_t> this_pass_;  // run_due()'s snapshot of due_
  RelaxedCounter run_count_;
  std::atomic<bool> in_callback_{false};
};

}  // namespace fiberloop::internal
