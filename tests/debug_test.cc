// The stall detector (LoopOptions::stall_threshold) and Loop::dump_on_signal.
// Both print to stderr, which the tests capture.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <string>
#include <system_error>
#include <thread>

#include "tests/loop_fixture.h"

// Runs for `d` without yielding. External and noinline, so that it shows
// by name in backtraces (the test links with -rdynamic).
[[gnu::noinline]] void spin_without_yielding(fiberloop::Duration d) {
  const fiberloop::TimePoint until = fiberloop::Clock::now() + d;
  while (fiberloop::Clock::now() < until) {
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
    loop.spawn(o, [] { spin_without_yielding(400ms); }).detach();
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
      group.spawn_on(1, o, [] { spin_without_yielding(400ms); }).join();
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
    loop.call_soon([] { spin_without_yielding(300ms); });
    loop.run();
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("fiberloop: stall: a loop callback"), std::string::npos) << err;
}

TEST(StallDetector, QuietForIdleLoopsAndFibersThatYield) {
  ::testing::internal::CaptureStderr();
  {
    Loop loop(with_stall_threshold(50ms));
    loop.spawn([] { this_fiber::sleep_for(300ms); }).detach();  // idle in epoll
    loop.spawn([] {                                             // busy, but yielding
          const TimePoint until = Clock::now() + 300ms;
          while (Clock::now() < until) this_fiber::yield();
        })
        .detach();
    loop.run();
    std::this_thread::sleep_for(200ms);  // not in run(): not a stall either
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("stall"), std::string::npos) << err;
}

TEST(StallDetector, TheEnvironmentTurnsItOnAndABadValueIsNamed) {
  ::setenv("FIBERLOOP_STALL_THRESHOLD_MS", "50", 1);
  ::testing::internal::CaptureStderr();
  {
    Loop loop;
    loop.call_soon([] { spin_without_yielding(300ms); });
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
