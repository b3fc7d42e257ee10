// What the cross-thread race tests share: how many rounds a race runs (fewer
// under the sanitizers, which slow each round by 10-50x) and a group of two
// unpinned loops to run it on.
#pragma once

#include "fiberloop.h"

namespace fiberloop::testing {

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr int kRaceRounds = 300;
#else
inline constexpr int kRaceRounds = 3000;
#endif

// Two loops, unpinned: the tests must not depend on which CPUs exist.
inline GroupOptions two_loops() {
  GroupOptions options;
  options.loops = 2;
  options.pin_threads = false;
  return options;
}

}  // namespace fiberloop::testing
