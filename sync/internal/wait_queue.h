// A FIFO of parked fibers, through each fiber's own wait hook: the building
// block of Event, Mutex, ConditionVariable, Semaphore and WaitGroup. Single
// loop: all of it runs on the loop's thread. An interrupted (cancelled or
// timed out) fiber leaves the queue at once, so a notification reaches the
// next waiter instead.
#pragma once

#include "loop/internal/fiber_record.h"
#include "loop/internal/intrusive_list.h"
#include "loop/internal/loop_core.h"
#include "loop/internal/timer_heap.h"
#include "sync/internal/home_loop.h"

namespace fiberloop::internal {

class WaitQueue {
 public:
  // `kind` is what Loop::dump() says its waiters wait on.
  explicit WaitQueue(WaitKind kind) noexcept : kind_(kind) {}

  bool empty() const noexcept { return fibers_.empty(); }

  // Throws std::logic_error naming `what` unless called on the thread of the
  // loop the queue (and the primitive around it) belongs to; see HomeLoop.
  void check(const char* what) { home_.check(what); }
  // That loop, or null while no loop has used the queue.
  LoopCore* home() const noexcept { return home_.loop(); }

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
  static LoopCore& loop_of(FiberRecord& f) noexcept { return *f.loop; }
  IntrusiveList<FiberRecord, WaitTag> fibers_;
  WaitKind kind_;
  HomeLoop home_;
};

}  // namespace fiberloop::internal
