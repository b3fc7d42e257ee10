// Exceptions the loop delivers into fibers.
#pragma once

#include <stdexcept>

namespace fiberloop {

// Thrown inside a cancelled fiber at its current or next suspension point
// (yield, sleep, join, any wait, any parked I/O), so that its destructors run.
// Deliberately not a std::exception: `catch (const std::exception&)` in user
// code does not swallow it. A fiber may catch it to clean up, and should
// rethrow. join() on a cancelled fiber rethrows it.
struct Cancelled {};

// Thrown at a suspension point inside with_timeout() once its deadline
// passed, and by a Stream operation past the stream's read or write
// deadline (set_deadline). The message says which: "with_timeout: 20 ms
// elapsed (the timeout set at app.cc:12) ..." or "fd 7: the read deadline
// (set_read_deadline ...) passed". A with_timeout() scope that expired keeps
// throwing it at every suspension point inside the scope, also once caught.
class TimeoutError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace fiberloop
