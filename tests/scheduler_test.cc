// Spawn, yield, the round-robin order and fairness of the ready queue.
#include <unistd.h>
#include <chrono>

#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/group_helpers.h"
#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using testing::LoopTest;
using Scheduler = LoopTest;

TEST_F(Scheduler, YieldIsRoundRobin) {
  std::string trace;
  auto worker = [&trace](char c) {
    return [&trace, c] {
      for (int i = 0; i < 3; ++i) {
        trace += c;
        this_fiber::yield();
      }
    };
  };
  loop().spawn(worker('a'));
  loop().spawn(worker('b'));
  loop().spawn(worker('c'));
  loop().run();
  EXPECT_EQ(trace, "abcabcabc");
}

TEST_F(Scheduler, SpawnDoesNotSwitch) {
  std::string trace;
  run([&] {
    auto child = spawn([&] { trace += "child "; });
    trace += "parent ";
    child.join();
    trace += "joined";
  });
  EXPECT_EQ(trace, "parent child joined");
}

TEST_F(Scheduler, FiberSpawnedDuringAnIterationRunsAfterTheOthers) {
  std::string trace;
  loop().spawn([&] {
    trace += "a";
    spawn([&] { trace += "c"; });
    this_fiber::yield();
    trace += "a";
  });
  loop().spawn([&] { trace += "b"; });
  loop().run();
  EXPECT_EQ(trace, "abca");
}

TEST_F(Scheduler, SingleFiberYieldReturnsAtOnce) {
  int n = run([] {
    int i = 0;
    for (; i < 1000; ++i) this_fiber::yield();
    return i;
  });
  EXPECT_EQ(n, 1000);
}

TEST_F(Scheduler, IdsAreDistinctAndVisibleInside) {
  FiberId inside = 0;
  auto t = loop().spawn([&] { inside = this_fiber::id(); });
  auto u = loop().spawn([] {});
  loop().run();
  EXPECT_NE(t.id(), 0u);
  EXPECT_NE(t.id(), u.id());
  EXPECT_EQ(inside, t.id());
  EXPECT_EQ(this_fiber::id(), 0u);
}

TEST_F(Scheduler, HundredThousandLiveFibersWithDefaultOptions) {
  constexpr int kFibers = testing::at_scale(100'000);
  int finished = 0;
  run([&] {
    std::vector<Task<int>> tasks;
    tasks.reserve(kFibers);
    for (int i = 0; i < kFibers; ++i) {
      tasks.push_back(spawn([i] {
        this_fiber::yield();  // every fiber is alive at once here
        return i;
      }));
    }
    EXPECT_EQ(loop().stats().fibers_alive, static_cast<std::uint64_t>(kFibers) + 1);
    long long sum = 0;
    for (auto& t : tasks) sum += t.join();
    EXPECT_EQ(sum, static_cast<long long>(kFibers) * (kFibers - 1) / 2);
    finished = kFibers;
  });
  EXPECT_EQ(finished, kFibers);
}

TEST_F(Scheduler, StopFromAFiberEndsRun) {
  int rounds = 0;
  auto spinner = loop().spawn([&] {
    for (;;) {
      ++rounds;
      if (rounds == 5) Loop::current()->stop();
      this_fiber::yield();
    }
  });
  loop().run();
  EXPECT_EQ(rounds, 5);
  EXPECT_FALSE(spinner.done());
  spinner.cancel();
  EXPECT_THROW(spinner.join(), Cancelled);
}

TEST_F(Scheduler, StatsCountFibersAndSwitches) {
  run([] {
    auto t = spawn([] { this_fiber::yield(); });
    t.join();
  });
  LoopStats s = loop().stats();
  EXPECT_EQ(s.fibers_created, 2u);
  EXPECT_EQ(s.fibers_finished, 2u);
  EXPECT_EQ(s.fibers_alive, 0u);
  EXPECT_GE(s.switches, 3u);
}

TEST(SchedulerMisuse, YieldOutsideAFiber) {
  try {
    this_fiber::yield();
    FAIL() << "yield outside a fiber did not throw";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("outside a fiber"), std::string::npos) << e.what();
  }
  Loop loop;
  EXPECT_THROW(this_fiber::yield(), std::logic_error);  // a loop, but no fiber
}

TEST(SchedulerMisuse, SpawnWithoutALoop) {
  try {
    spawn([] {});
    FAIL() << "spawn without a loop did not throw";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("no Loop on this thread"), std::string::npos);
  }
}

TEST(SchedulerMisuse, SecondLoopOnAThread) {
  Loop loop;
  EXPECT_THROW(Loop(), std::logic_error);
  EXPECT_EQ(Loop::current(), &loop);
}

TEST(SchedulerThreads, SpawnFromAnotherThreadQueuesTheFiberOnTheLoop) {
  Loop loop;
  auto keep = loop.keep_alive();
  Task<std::thread::id> t;
  std::thread other([&] { t = loop.spawn([] { return std::this_thread::get_id(); }); });
  other.join();
  EXPECT_EQ(t.join(), std::this_thread::get_id());  // ran on the loop's thread
}

TEST(SchedulerMisuse, RunFromInsideAFiber) {
  Loop loop;
  auto t = loop.spawn([&] { loop.run(); });
  EXPECT_THROW(t.join(), std::logic_error);
}

TEST(Run, ReturnsMainsValueAndRethrows) {
  EXPECT_EQ(fiberloop::run([] { return 7; }), 7);
  EXPECT_THROW(fiberloop::run([]() -> int { throw std::runtime_error("boom"); }),
               std::runtime_error);
  EXPECT_EQ(Loop::current(), nullptr);
}

TEST(Run, CancelsWhatMainLeftBehind) {
  bool unwound = false;
  fiberloop::run([&] {
    spawn([&] {
      struct Flag {
        bool& f;
        ~Flag() { f = true; }
      } flag{unwound};
      for (;;) this_fiber::yield();
    });
    this_fiber::yield();  // let it start
  });
  EXPECT_TRUE(unwound);
  EXPECT_EQ(internal::StackPool::this_thread().stats().outstanding, 0u);
}

}  // namespace
}  // namespace fiberloop

namespace fiberloop {
namespace {

TEST(Dump, NamesEveryFiberItsStateAndWhatItWaitsOn) {
  std::ostringstream out;
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  FiberId sleeper_id = 0;
  fiberloop::run([&] {
    Mutex m;
    m.lock();
    SpawnOptions a;
    a.name = "locker";
    auto locker = spawn(a, [&] { std::lock_guard lock(m); });
    SpawnOptions b;
    b.name = "sleeper";
    auto sleeper = spawn(b, [] { this_fiber::sleep_for(std::chrono::hours(1)); });
    sleeper_id = sleeper.id();
    SpawnOptions c;
    c.name = "reader";
    auto reader = spawn(c, [&] { wait_readable(pipe_fds[0]); });
    SpawnOptions d;
    d.name = "joiner";
    auto joiner = spawn(d, [&] { sleeper.join(); });
    auto fresh = spawn([] {});
    this_fiber::yield();
    // Parked time is read from the loop's clock at each poll: let one pass.
    this_fiber::sleep_for(std::chrono::milliseconds(300));
    spawn([] {}).detach();
    Loop::current()->dump(out);
    reader.cancel();
    sleeper.cancel();
    m.unlock();
    locker.join();
    EXPECT_THROW(reader.join(), Cancelled);
    EXPECT_THROW(joiner.join(), Cancelled);  // sleeper's Cancelled, rethrown by its join
    fresh.join();
  });
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  const std::string text = out.str();
  EXPECT_NE(text.find("fibers alive"), std::string::npos) << text;
  // "'locker' parked <N> ms: waiting on a Mutex", at least the 250 ms slept
  // ("<N> s" past 999.5 ms, which a loaded machine can make of it).
  const std::string locker = "'locker' parked ";
  const auto at = text.find(locker);
  ASSERT_NE(at, std::string::npos) << text;
  std::size_t digits = 0;
  const double amount = std::stod(text.substr(at + locker.size()), &digits);
  const std::string rest = text.substr(at + locker.size() + digits);
  const bool in_ms = rest.starts_with(" ms: waiting on a Mutex");
  EXPECT_TRUE(in_ms || rest.starts_with(" s: waiting on a Mutex")) << text;
  EXPECT_GE(in_ms ? amount : amount * 1000, 250) << text;
  EXPECT_NE(text.find("'sleeper' parked "), std::string::npos) << text;
  EXPECT_NE(text.find("sleeping, 60 min to go"), std::string::npos) << text;
  EXPECT_NE(text.find("reading fd " + std::to_string(pipe_fds[0]) + " in wait_readable"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("'joiner' parked"), std::string::npos) << text;
  EXPECT_NE(text.find("joining fiber " + std::to_string(sleeper_id)), std::string::npos) << text;
  EXPECT_NE(text.find(" running, stack used"), std::string::npos) << text;
  EXPECT_NE(text.find("ready (not started)"), std::string::npos) << text;
  EXPECT_NE(text.find("scheduler_test.cc"), std::string::npos) << text;
}

}  // namespace
}  // namespace fiberloop

namespace fiberloop {
namespace {

// Uses about `bytes` of stack, then parks until cancelled.
void use_stack_and_park(std::size_t bytes) {
  if (bytes >= 1024) {
    volatile char frame[1024];
    frame[0] = 1;
    use_stack_and_park(bytes - 1024);
    (void)frame[0];
    return;
  }
  testing::park_forever();
}

TEST(StackHighWater, MeasuresTheDeepestLiveStack) {
  fiberloop::run([] {
    auto shallow = spawn([] { use_stack_and_park(0); });
    this_fiber::yield();
    const std::size_t little = Loop::current()->stack_high_water();
    EXPECT_GT(little, 0u);
    EXPECT_LE(little, 16u * 1024) << "a fiber that did nothing used " << little << " bytes";
    auto deep = spawn([] { use_stack_and_park(100 * 1024); });
    this_fiber::yield();
    EXPECT_GE(Loop::current()->stack_high_water(), 100u * 1024);
    EXPECT_EQ(Loop::current()->stats().stack_high_water, 0u);  // not measured unless asked
    EXPECT_GE(Loop::current()->stats(LoopStats::kWithStackHighWater).stack_high_water, 100u * 1024);
    std::ostringstream out;
    Loop::current()->dump(out);
    EXPECT_NE(out.str().find("stack used"), std::string::npos) << out.str();
    shallow.cancel();
    deep.cancel();
    EXPECT_THROW(shallow.join(), Cancelled);
    EXPECT_THROW(deep.join(), Cancelled);
  });
}

// A loop gives its pooled stacks back to the kernel once it has been idle
// for a second (run_loop.cc). Fibers that yield to each other for longer
// than that never come back to the run loop (the switch path begins each
// iteration itself), and that spell is work too: just after it the pool is
// whole. Before, the idle second was counted from the spell's start, and the
// pool was trimmed the moment the loop went idle.
TEST(IdleTrim, FibersThatKeptTheSwitchPathBusyAreWork) {
  LoopGroup group(testing::unpinned(1));
  // More than the 1024 stacks an idle loop keeps. The burst makes 3001 (its
  // main too), and the fiber that reads the stats below holds one.
  constexpr std::size_t kFibers = 3000;
  group.run([] {
    // The spell starts once every fiber runs: under a sanitizer, spawning
    // them can take longer than the spell, and fibers that found it over
    // would end at once and hand their stacks to the next ones.
    std::size_t started = 0;
    std::optional<std::chrono::steady_clock::time_point> until;
    std::vector<Task<void>> fibers;
    for (std::size_t i = 0; i < kFibers; ++i) {
      fibers.push_back(spawn([&] {
        if (++started == kFibers) {
          until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
        }
        while (!until || std::chrono::steady_clock::now() < *until) this_fiber::yield();
      }));
    }
    for (auto& f : fibers) f.join();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the loop goes idle
  const std::size_t pooled = group.run([] { return Loop::current()->stats().stacks_pooled; });
  EXPECT_GE(pooled, kFibers);
}

}  // namespace
}  // namespace fiberloop
