// The loop a single-loop primitive (Event, Semaphore, Channel, Mutex,
// ConditionVariable, WaitGroup, Promise/Future) belongs to: the loop of the
// thread that made it, or, if that thread had none, the first loop that uses
// it. Used from any other thread, an operation throws std::logic_error
// saying to hand the call to its loop with call_soon_threadsafe(), instead
// of silently losing a wake-up or racing the loop's own use.
#pragma once

#include "loop/internal/loop_core.h"

namespace fiberloop::internal {

class HomeLoop {
 public:
  HomeLoop() noexcept : loop_(LoopCore::current()) {}
  HomeLoop(const HomeLoop&) = delete;
  HomeLoop& operator=(const HomeLoop&) = delete;

  // Throws std::logic_error naming `what` (e.g. "Event::set") and the
  // primitive, unless called on its loop's thread. A primitive not yet used
  // by any loop (or whose loop is gone) becomes the calling loop's.
  void check(const char* what) {
    LoopCore* here = LoopCore::current();
    if (here == loop_) [[likely]]
      return;
    adopt_or_throw(here, what);
  }

  // The loop, or null if none has used the primitive yet.
  LoopCore* loop() const noexcept { return loop_; }

 private:
  void adopt_or_throw(LoopCore* here, const char* what);
  LoopCore* loop_;
};

}  // namespace fiberloop::internal
