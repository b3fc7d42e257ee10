// Stack overflow: reported with the fiber's id and name, then abort; any
// other segmentation fault is left to the default action.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>

#include "fiberloop.h"

namespace fiberloop {
namespace {

// Deep recursion with a frame the compiler cannot elide (the depth test
// never stops it: it is there to keep -Winfinite-recursion quiet).
int recurse(int depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  if (depth < 0) return 0;
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
  // A null write in a fiber still dies as it would without fiberloop (by
  // SIGSEGV, or AddressSanitizer's report), and is not called an overflow.
  int err[2];
  ASSERT_EQ(::pipe(err), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::dup2(err[1], STDERR_FILENO);
    fiberloop::run([] {
      volatile int* nowhere = nullptr;
      *nowhere = 1;
    });
    ::_exit(0);
  }
  ::close(err[1]);
  std::string output;
  char buf[4096];
  for (ssize_t n; (n = ::read(err[0], buf, sizeof buf)) > 0;)
    output.append(buf, static_cast<std::size_t>(n));
  ::close(err[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  // Killed by SIGSEGV, or (under the sanitizers) ended by their report.
  const bool died = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
  EXPECT_TRUE(died) << "status " << status << ": " << output;
  EXPECT_EQ(output.find("stack overflow"), std::string::npos) << output;
}

}  // namespace
}  // namespace fiberloop
