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

// Thrown at a suspension point inside with_timeout() once its deadline passed.
class TimeoutError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace fiberloop
