// LoopGroup: threads and loops, spawn_on and run from anywhere, Tasks used
// from other loops and plain threads, and its introspection (its bad input:
// group_misuse_test.cc; the deadlock rule: group_deadlock_test.cc).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fiberloop.h"
#include "tests/group_helpers.h"
#include "tests/thread_probe.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

using testing::await_parked;
using testing::block_until_parked;
using testing::unpinned;

TEST(Group, DefaultSizeIsTheAffinityMask) {
  cpu_set_t mask;
  ASSERT_EQ(::sched_getaffinity(0, sizeof mask, &mask), 0);
  LoopGroup group;
  EXPECT_EQ(group.size(), static_cast<std::size_t>(CPU_COUNT(&mask)));
}

TEST(Group, EachLoopRunsOnItsOwnThreadWithItsIndex) {
  LoopGroup group(unpinned(3));
  std::vector<std::thread::id> threads;
  for (std::size_t i = 0; i < group.size(); ++i) {
    auto task = group.spawn_on(i, [&group, i] {
      EXPECT_EQ(LoopGroup::current(), &group);
      // Named for top -H and gdb; a run_blocking worker too.
      EXPECT_EQ(testing::this_thread_name(), "fl-loop-" + std::to_string(i));
      EXPECT_EQ(run_blocking([] { return testing::this_thread_name(); }), "fl-blocking");
      return std::make_pair(Loop::current()->index(), std::this_thread::get_id());
    });
    auto [index, thread] = task.join();  // from a plain thread: blocks
    EXPECT_EQ(index, i);
    EXPECT_NE(thread, std::this_thread::get_id());
    threads.push_back(thread);
  }
  EXPECT_NE(threads[0], threads[1]);
  EXPECT_NE(threads[1], threads[2]);
  EXPECT_EQ(LoopGroup::current(), nullptr);
  fiberloop::run([] { EXPECT_EQ(Loop::current()->index(), 0u); });  // a lone loop
}

TEST(Group, RunReturnsMainsValueAndMayBeCalledAgain) {
  LoopGroup group(unpinned(2));
  EXPECT_EQ(group.run([] { return 6 * 7; }), 42);
  EXPECT_EQ(group.run([] { return Loop::current()->index(); }), 0u);
  EXPECT_THROW(group.run([]() -> int { throw std::runtime_error("boom"); }), std::runtime_error);
}

TEST(Group, RunGroupSpreadsWorkOverEveryLoopAndJoinsAcrossLoops) {
  const long sum = run_group(
      [] {
        LoopGroup& group = *LoopGroup::current();
        std::vector<Task<long>> parts;
        for (std::size_t i = 0; i < group.size(); ++i) {
          parts.push_back(group.spawn_on(i, [i] {
            long s = 0;
            for (int k = 0; k < 1000; ++k) {
              s += static_cast<long>(i);
              if (k % 100 == 0) this_fiber::yield();
            }
            return s;
          }));
        }
        long total = 0;
        for (auto& p : parts) total += p.join();  // from loop 0's fiber: parks
        return total;
      },
      unpinned(4));
  EXPECT_EQ(sum, 1000L * (0 + 1 + 2 + 3));
}

TEST(Group, TaskFromAnotherLoopCanBeCancelledAndReportsDone) {
  LoopGroup group(unpinned(2));
  group.run([&group] {
    auto sleeper = group.spawn_on(1, [] { this_fiber::sleep_for(1h); });
    EXPECT_FALSE(sleeper.done());
    block_until_parked(group, 1, "sleeping");  // started: the cancel interrupts its sleep
    sleeper.cancel();                          // from loop 0, for a fiber of loop 1
    EXPECT_THROW(sleeper.join(), Cancelled);
    EXPECT_TRUE(sleeper.done());
  });
}

TEST(Group, AJoinerOnAnotherLoopCanBeCancelledWhileItWaits) {
  LoopGroup group(unpinned(2));
  group.run([&group] {
    Event release;
    auto worker = group.spawn_on(1, [&release] {
      release.wait();
      return 7;
    });
    auto joiner = spawn([&worker] { return worker.join(); });
    await_parked(group, 0, "joining");  // the join waits: the cancel reaches a waiter
    joiner.cancel();
    EXPECT_THROW(joiner.join(), Cancelled);
    release.set();                // from loop 0, for a waiter on loop 1
    EXPECT_EQ(worker.join(), 7);  // joinable still: the cancelled join did not consume it
  });
}

// gather over tasks of several loops: the values in order, the first
// failure rethrown once all finished; a timeout cancels the tasks still
// running on their own loops (before, a task of another loop made gather
// throw logic_error and cancel that loop's fibers from this thread).
TEST(Group, GatherTakesTasksOfEveryLoop) {
  LoopGroup group(unpinned(2));
  group.run([&group] {
    auto a = group.spawn_on(1, [] {
      this_fiber::sleep_for(2ms);
      return 1;
    });
    auto b = spawn([] { return std::string("here"); });
    auto [x, y] = gather(a, b);
    EXPECT_EQ(x, 1);
    EXPECT_EQ(y, "here");

    std::vector<Task<int>> parts;
    for (int i = 0; i < 4; ++i) parts.push_back(group.spawn_on(i % 2, [i] { return i * i; }));
    EXPECT_EQ(gather(parts), (std::vector<int>{0, 1, 4, 9}));

    auto fails = group.spawn_on(1, []() -> int { throw std::runtime_error("loop 1 failed"); });
    auto fine = spawn([] { return 2; });
    EXPECT_THROW(gather(fails, fine), std::runtime_error);
    EXPECT_EQ(fine.join(), 2);

    auto sleeper = group.spawn_on(1, [] { this_fiber::sleep_for(1h); });
    EXPECT_THROW(with_timeout(5ms, [&] { gather(sleeper); }), TimeoutError);
    EXPECT_THROW(sleeper.join(), Cancelled);  // cancelled on loop 1

    // This loop's failure comes first, whatever the argument order.
    auto remote_fails = group.spawn_on(1, []() -> int { throw std::runtime_error("remote"); });
    auto local_fails = spawn([]() -> int { throw std::logic_error("local"); });
    EXPECT_THROW(gather(remote_fails, local_fails), std::logic_error);
  });
  // On loop 0's thread outside any fiber (a callback): refused before any
  // wait, naming gather, and nothing is cancelled.
  LoopGroup other(unpinned(2));
  other.run([&other] {
    Event release;
    auto remote = other.spawn_on(1, [&release] {
      release.wait();
      return 5;
    });
    std::string what;
    Event done;
    Loop::current()->call_soon([&] {
      try {
        gather(remote);
      } catch (const std::logic_error& e) {
        what = e.what();
      }
      done.set();
    });
    done.wait();
    EXPECT_NE(what.find("gather: "), std::string::npos) << what;
    EXPECT_NE(what.find("outside any fiber"), std::string::npos) << what;
    release.set();
    EXPECT_EQ(remote.join(), 5);  // not cancelled
  });
}

// A join from another loop that times out takes its node out of the
// target's done-waiters at once: a fiber retrying with_timeout(join) piled
// one up per try until the target finished (as did LoopGroup::run's
// deadlock watch, once a second for main's whole life).
TEST(Group, AJoinThatTimesOutLeavesNothingBehindOnTheTargetsLoop) {
  LoopGroup group(unpinned(2));
  group.run([&group] {
    Event release;
    auto target = group.spawn_on(1, [&release] { release.wait(); });
    for (int i = 0; i < 50; ++i) {
      EXPECT_THROW(with_timeout(100us, [&] { target.join(); }), TimeoutError);
    }
    internal::FiberRecord* record = internal::TaskAccess::record(target);
    const std::size_t left =
        group
            .spawn_on(1,
                      [record] {
                        std::size_t n = 0;
                        record->done_waiters.for_each([&n](const internal::DoneWaiter&) { ++n; });
                        return n;
                      })
            .join();
    EXPECT_EQ(left, 0u);
    release.set();
    target.join();
  });
}

TEST(Group, DroppingATaskOnAnotherThreadDetachesIt) {
  LoopGroup group(unpinned(2));
  std::atomic<bool> ran{false};
  {
    auto task = group.spawn_on(1, [&ran] {
      this_fiber::sleep_for(2ms);
      ran = true;
    });
  }  // dropped here, on a plain thread
  group.run([&ran] {
    while (!ran) this_fiber::sleep_for(1ms);
  });
  EXPECT_TRUE(ran);
}

TEST(Group, DestroyingTheGroupCancelsAndUnwindsEveryFiber) {
  std::atomic<int> unwound{0};
  {
    LoopGroup group(unpinned(2));
    for (std::size_t i = 0; i < group.size(); ++i) {
      for (int k = 0; k < 10; ++k) {
        group
            .spawn_on(i,
                      [&unwound] {
                        struct Count {
                          std::atomic<int>& n;
                          ~Count() { ++n; }
                        } count{unwound};
                        this_fiber::sleep_for(1h);
                      })
            .detach();
      }
    }
    // They have all started: loop 1 runs its queue in order, so its ten
    // are parked by the time the marker fiber queued after them has run.
    group.run([&group] { group.spawn_on(1, [] {}).join(); });
  }
  EXPECT_EQ(unwound, 20);
}

TEST(Group, StopEndsTheLoopsAndLaterWorkIsRefused) {
  LoopGroup group(unpinned(2));
  EXPECT_EQ(group.run([] { return 1; }), 1);
  group.stop();
  try {
    group.spawn_on(0, [] {});
    FAIL() << "spawn_on after stop() did not throw";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("stopped"), std::string::npos) << e.what();
  }
}

// A Task spawned straight on a loop of a stopped group (Loop::spawn, which
// the group does not guard) is cancelled before it runs, and its join is
// answered. Before the fix a closed loop waited for ~LoopGroup without
// taking posts, so the spawn was never handled and the join hung.
TEST(Group, ASpawnOnALoopOfAStoppedGroupIsCancelledAndItsJoinReturns) {
  LoopGroup group(unpinned(2));
  EXPECT_EQ(group.run([] { return 1; }), 1);
  group.stop();
  std::this_thread::sleep_for(100ms);  // the loops have closed by now (else still answered)
  bool ran = false;
  auto late = group.loop(1).spawn([&ran] { ran = true; });
  EXPECT_THROW(late.join(), Cancelled);
  EXPECT_FALSE(ran);
}

// Loop::stop() on one of a group's loops stops the group: the other loops'
// fibers are cancelled and later work is refused. Before the fix that loop
// alone closed, and a fiber on another loop ran on (its join hung).
TEST(Group, StoppingOneLoopOfAGroupStopsTheGroup) {
  LoopGroup group(unpinned(2));
  auto sleeper = group.spawn_on(0, [] { this_fiber::sleep_for(1h); });
  EXPECT_EQ(group.run([] { return 1; }), 1);  // the sleeper has started
  group.loop(1).stop();
  EXPECT_THROW(sleeper.join(), Cancelled);
  EXPECT_THROW(group.spawn_on(0, [] {}), std::logic_error);
}

// ---- introspection --------------------------------------------------------------

TEST(Group, DumpAndStatsCoverEveryLoop) {
  LoopGroup group(unpinned(2));
  group.run([&group] {
    auto sleeper =
        group.spawn_on(1, SpawnOptions{.name = "sleeper-on-1"}, [] { this_fiber::sleep_for(1h); });
    await_parked(group, 1, "sleeping");
    std::ostringstream out;
    group.dump(out);
    EXPECT_NE(out.str().find("== loop 0 of 2"), std::string::npos) << out.str();
    EXPECT_NE(out.str().find("== loop 1 of 2"), std::string::npos) << out.str();
    EXPECT_NE(out.str().find("'sleeper-on-1'"), std::string::npos) << out.str();
    const std::vector<LoopStats> each = group.stats_per_loop();
    ASSERT_EQ(each.size(), 2u);
    EXPECT_GE(each[1].fibers_alive, 2u);  // the sleeper, and the fiber that read the stats there
    EXPECT_GT(group.stats().fibers_created, each[0].fibers_created + each[1].fibers_created - 1);
    sleeper.cancel();
    EXPECT_THROW(sleeper.join(), Cancelled);
  });
}

}  // namespace
}  // namespace fiberloop
