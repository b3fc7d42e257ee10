// The stall detector (LoopOptions::stall_threshold) and Loop::dump_on_signal.
// Both print to stderr, which the tests capture.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <system_error>
#include <thread>

#include "tests/loop_fixture.h"

// Runs without yielding until the test's captured stderr (CaptureStderr
// puts a file on fd 2) says `until_said`, for 10 s at most: the stall
// detector has then reported, however late a loaded machine ran its thread.
// With stderr not a file (no capture), it runs 400 ms. External and
// noinline, so that it shows by name in the backtrace the report takes
// while it runs (the test links with -rdynamic).
[[gnu::noinline]] void spin_without_yielding(const char* until_said) {
  const auto start = std::chrono::steady_clock::now();
  auto give_up = start + std::chrono::seconds(10);
  std::string said;
  char buf[4096];
  while (said.find(until_said) == std::string::npos && std::chrono::steady_clock::now() < give_up) {
    const ssize_t n = ::pread(STDERR_FILENO, buf, sizeof buf, static_cast<off_t>(said.size()));
    if (n > 0) said.append(buf, static_cast<std::size_t>(n));
    if (n < 0) give_up = start + std::chrono::milliseconds(400);
  }
}

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

LoopOptions with_stall_threshold(Duration d) {
  LoopOptions o;
  o.stall_threshold = d;
  return o;
}

TEST(StallDetector, ReportsAFiberThatRunsWithoutYieldingWhileItRuns) {
  ::testing::internal::CaptureStderr();
  {
    Loop loop(with_stall_threshold(50ms));
    SpawnOptions o;
    o.name = "spinner";
    loop.spawn(o, [] { spin_without_yielding("spin_without_yielding"); }).detach();
    loop.run();
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("fiberloop: stall: fiber "), std::string::npos) << err;
  EXPECT_NE(err.find("'spinner' (spawned at tests/debug_test.cc:"), std::string::npos) << err;
  EXPECT_NE(err.find("without yielding (LoopOptions::stall_threshold 50 ms)"), std::string::npos)
      << err;
  // The backtrace was taken while the fiber still spun (-rdynamic names it).
  EXPECT_NE(err.find("spin_without_yielding"), std::string::npos) << err;
  EXPECT_NE(err.find("fiberloop: stall over: the loop thread ran"), std::string::npos) << err;
}

// A LoopGroup's threads block every signal: the watchdog's still reaches
// its loops (no report came before, only "stall over" afterwards).
TEST(StallDetector, WatchesEveryLoopOfAGroup) {
  ::testing::internal::CaptureStderr();
  {
    GroupOptions options;
    options.loops = 2;
    options.pin_threads = false;
    options.loop.stall_threshold = 50ms;
    LoopGroup group(options);
    group.run([&group] {
      SpawnOptions o;
      o.name = "group-spinner";
      group.spawn_on(1, o, [] { spin_without_yielding("spin_without_yielding"); }).join();
    });
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("fiberloop: stall: fiber "), std::string::npos) << err;
  EXPECT_NE(err.find("'group-spinner'"), std::string::npos) << err;
  EXPECT_NE(err.find("spin_without_yielding"), std::string::npos) << err;
}

TEST(StallDetector, ReportsACallback) {
  ::testing::internal::CaptureStderr();
  {
    Loop loop(with_stall_threshold(50ms));
    loop.call_soon([] { spin_without_yielding("stall: a loop callback"); });
    loop.run();
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("fiberloop: stall: a loop callback"), std::string::npos) << err;
}

// (A threshold no pause of a loaded machine's scheduler reaches: a thread
// held off the CPU that long would look stalled.)
TEST(StallDetector, QuietForIdleLoopsAndFibersThatYield) {
  ::testing::internal::CaptureStderr();
  {
    Loop loop(with_stall_threshold(500ms));
    loop.spawn([] { this_fiber::sleep_for(700ms); }).detach();  // idle in epoll
    loop.spawn([] {                                             // busy, but yielding
          const TimePoint until = Clock::now() + 700ms;
          while (Clock::now() < until) this_fiber::yield();
        })
        .detach();
    loop.run();
    std::this_thread::sleep_for(700ms);  // not in run(): not a stall either
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("stall"), std::string::npos) << err;
}

TEST(StallDetector, TheEnvironmentTurnsItOnAndABadValueIsNamed) {
  ::setenv("FIBERLOOP_STALL_THRESHOLD_MS", "50", 1);
  ::testing::internal::CaptureStderr();
  {
    Loop loop;
    loop.call_soon([] { spin_without_yielding("stall: a loop callback"); });
    loop.run();
  }
  ::setenv("FIBERLOOP_STALL_THRESHOLD_MS", "fifty", 1);
  { Loop loop; }
  ::unsetenv("FIBERLOOP_STALL_THRESHOLD_MS");
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("fiberloop: stall: a loop callback"), std::string::npos) << err;
  EXPECT_NE(err.find("FIBERLOOP_STALL_THRESHOLD_MS='fifty' is not a number of milliseconds"),
            std::string::npos)
      << err;
}

TEST(DumpOnSignal, PrintsTheDumpAtTheNextIteration) {
  ::testing::internal::CaptureStderr();
  {
    Loop loop;
    loop.dump_on_signal(SIGUSR1);
    SpawnOptions o;
    o.name = "waiting-for-godot";
    Event never;
    auto waiter = loop.spawn(o, [&] { never.wait(); });
    loop.spawn([] {
          std::raise(SIGUSR1);
          this_fiber::sleep_for(50ms);  // the loop polls, and dumps
        })
        .join();
    waiter.cancel();
  }
  std::signal(SIGUSR1, SIG_DFL);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("fibers alive"), std::string::npos) << err;
  EXPECT_NE(err.find("'waiting-for-godot' parked"), std::string::npos) << err;
  EXPECT_NE(err.find("waiting on an Event"), std::string::npos) << err;
}

TEST(DumpOnSignal, ASignalThatCannotBeCaughtIsRefusedWithAReason) {
  Loop loop;
  try {
    loop.dump_on_signal(SIGKILL);
    FAIL() << "SIGKILL accepted";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("signal 9 cannot be caught"), std::string::npos)
        << e.what();
  }
}

TEST(DumpOnSignal, TheEnvironmentTurnsItOnForSigquit) {
  ::setenv("FIBERLOOP_DUMP_ON_SIGQUIT", "1", 1);
  ::testing::internal::CaptureStderr();
  {
    Loop loop;
    SpawnOptions o;
    o.name = "quitter";
    loop.spawn(o,
               [] {
                 std::raise(SIGQUIT);
                 this_fiber::sleep_for(50ms);
               })
        .join();
  }
  ::unsetenv("FIBERLOOP_DUMP_ON_SIGQUIT");
  std::signal(SIGQUIT, SIG_DFL);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("'quitter' parked"), std::string::npos) << err;
}

}  // namespace
}  // namespace fiberloop
