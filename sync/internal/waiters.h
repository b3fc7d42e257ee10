// How a sync/ primitive holds its waiters and knows its loop: the loop it
// belongs to (HomeLoop), a FIFO of parked fibers (WaitQueue: Event, Mutex,
// ConditionVariable, Semaphore, WaitGroup, Future), and a parked channel
// operation (ChannelOp: Channel and select). An interrupted (cancelled or
// timed out) waiter leaves at once, so a notification reaches the next one.
#pragma once

#include <cstddef>

#include "loop/internal/fiber_record.h"
#include "loop/internal/intrusive_list.h"
#include "loop/internal/scheduler.h"

namespace fiberloop::internal {

// The loop a single-loop primitive belongs to: the loop of the thread that
// made it, or, if that thread had none, the first loop that uses it. Used
// from any other thread, an operation throws std::logic_error saying to hand
// the call to its loop with call_soon_threadsafe(), instead of silently
// losing a wake-up or racing the loop's own use.
class HomeLoop {
 public:
  HomeLoop() noexcept : loop_(Scheduler::current()) {}
  HomeLoop(const HomeLoop&) = delete;
  HomeLoop& operator=(const HomeLoop&) = delete;

  // Throws std::logic_error naming `what` (e.g. "Event::set") unless called
  // on the primitive's loop's thread. A primitive no loop has used yet (or
  // whose loop is gone) becomes the calling loop's.
  void check(const char* what) {
    Scheduler* here = Scheduler::current();
    if (here == loop_) [[likely]]
      return;
    adopt_or_throw(here, what);
  }
  // That loop, or null while no loop has used the primitive.
  Scheduler* loop() const noexcept { return loop_; }

 private:
  void adopt_or_throw(Scheduler* here, const char* what);
  Scheduler* loop_;
};

class WaitQueue {
 public:
  // `kind` is what Loop::dump() says its waiters wait on.
  explicit WaitQueue(WaitKind kind) noexcept : kind_(kind) {}

  bool empty() const noexcept { return fibers_.empty(); }
  // See HomeLoop::check(): the queue belongs to its primitive's loop.
  void check(const char* what) { home_.check(what); }
  Scheduler* home() const noexcept { return home_.loop(); }

  // Parks the running fiber at the back until notify_one()/notify_all().
  // Throws: Cancelled or TimeoutError if interrupted first (the fiber has
  //         then left the queue); std::logic_error outside a fiber (`what`).
  void wait(const char* what);
  // As wait(), but gives up once `deadline` has passed.
  // Returns: true if notified, false if the deadline came first.
  bool wait_until(TimePoint deadline, const char* what);
  // As wait(), but interrupts do not end the wait: they stay pending and are
  // delivered at the fiber's next suspension point. For waits that must end
  // in a known state (a ConditionVariable re-acquiring its mutex).
  void wait_uninterruptible(const char* what);

  // Wakes the first waiter; returns it, or null if there was none.
  FiberRecord* notify_one() noexcept;
  // Wakes every waiter, in order.
  void notify_all() noexcept;

 private:
  IntrusiveList<FiberRecord, WaitTag> fibers_;
  WaitKind kind_;
  HomeLoop home_;
};

// A parked fiber's channel operation, on its stack: a plain send or recv, or
// one case of a select(). A fiber in a select has one op per case in several
// channels' queues at once; the first channel to complete one wakes the
// fiber, and the others then find it no longer parked and skip its ops
// (which it unlinks itself when it runs). The same check skips a fiber that
// was interrupted while parked, so a value passes to the next waiter.
struct SelectState {
  static constexpr std::size_t kNone = ~std::size_t{0};
  std::size_t winner = kNone;
};

struct ChannelOp : ListHook<> {
  FiberRecord* fiber = nullptr;
  void* value = nullptr;  // send: the T to move from; recv: the std::optional<T> to fill
  SelectState* select = nullptr;
  std::size_t case_index = 0;
  bool closed = false;  // completed by close()

  // Whether this op can still be completed: its fiber is parked on it.
  bool claimable() const noexcept { return fiber->state == FiberState::kParked; }
  // Marks the op done and wakes its fiber.
  void complete(bool by_close = false) noexcept {
    closed = by_close;
    if (select != nullptr) select->winner = case_index;
    fiber->scheduler->wake(*fiber);
  }
};

// Pops ops from `queue` until one can be completed; null if none can.
inline ChannelOp* claim(IntrusiveList<ChannelOp>& queue) noexcept {
  while (!queue.empty()) {
    ChannelOp& op = queue.pop_front();
    if (op.claimable()) return &op;
  }
  return nullptr;
}

}  // namespace fiberloop::internal
