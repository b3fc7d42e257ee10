// Stack overflow: reported with the fiber's id and name, then abort; any
// other segmentation fault is left to the default action.
#include <gtest/gtest.h>

#include <csignal>

#include "fiberloop.h"

namespace fiberloop {
namespace {

// Deep recursion with a frame the compiler cannot elide.
int recurse(int depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  return recurse(depth + 1) + frame[0];
}

TEST(StackOverflowDeathTest, IsReportedWithTheFiberAndItsStackSize) {
  EXPECT_DEATH(
      {
        fiberloop::run([] {
          SpawnOptions opts;
          opts.name = "deep";
          opts.stack = StackOptions{.size = 64 * 1024};
          return spawn(opts, [] { return recurse(0); }).join();
        });
      },
      "fiberloop: stack overflow in fiber [0-9]+ 'deep' \\(stack 64 KiB; raise "
      "StackOptions::size or SpawnOptions::stack\\)");
}

TEST(StackOverflowDeathTest, OtherFaultsAreNotMistakenForOverflows) {
  EXPECT_EXIT(
      {
        fiberloop::run([] {
          volatile int* nowhere = nullptr;
          *nowhere = 1;
        });
      },
      ::testing::KilledBySignal(SIGSEGV), "^$");
}

}  // namespace
}  // namespace fiberloop
