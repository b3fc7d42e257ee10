// Event: a flag fibers can wait for (asyncio.Event).
//
//   fiberloop::Event ready;
//   spawn([&] { ready.wait(); use(); });
//   ...; ready.set();   // wakes every waiter
//
// Single loop: an Event is used by fibers of one Loop, on its thread. From
// another thread, hand the set() over with Loop::call_soon_threadsafe().
#pragma once

#include "loop/options.h"
#include "sync/internal/waiters.h"

namespace fiberloop {

class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  // Sets the flag and wakes every waiter. Later wait()s return at once.
  // Throws: std::logic_error from a thread that is not the Event's loop's
  //         (hand the call over with Loop::call_soon_threadsafe()).
  void set();
  // Clears the flag. Waiters already woken still return.
  // Throws: as set().
  void clear() {
    waiters_.check("Event::clear");
    set_ = false;
  }
  // Whether the flag is set.
  bool is_set() const noexcept { return set_; }

  // Parks until the flag is set; returns at once if it is.
  // Throws: Cancelled; TimeoutError; std::logic_error outside a fiber, or
  //         from another loop's thread.
  void wait();
  // As wait(), giving up after `timeout`. Returns: whether the flag was set.
  bool wait_for(Duration timeout);

 private:
  bool set_ = false;
  internal::WaitQueue waiters_{internal::WaitKind::kEvent};
};

}  // namespace fiberloop
