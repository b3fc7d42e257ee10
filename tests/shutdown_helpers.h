// Helpers of the shutdown tests: a Loop destroyed on a thread of its own,
// timed, with what it printed.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "fiberloop.h"

namespace fiberloop::testing {

inline double seconds_since(TimePoint start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Runs `body` with a fresh Loop on a thread of its own (abandoned stacks
// are leaked with that thread's pool, not this one's); returns how long the
// Loop's destruction took, in seconds, and what it printed on stderr.
template <class F>
std::pair<double, std::string> shut_down(F body, LoopOptions options = {}) {
  double took = 0;
  ::testing::internal::CaptureStderr();
  std::thread([&] {
    auto loop = std::make_unique<Loop>(std::move(options));
    body(*loop);
    const TimePoint start = Clock::now();
    loop.reset();
    took = seconds_since(start);
  }).join();
  return {took, ::testing::internal::GetCapturedStderr()};
}

}  // namespace fiberloop::testing
