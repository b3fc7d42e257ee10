// The group's deadlock rule (Go's): a group reports a deadlock only when
// every loop is stuck and no thread but fiberloop's own exists, and a loop
// waiting on another loop, group or thread is not deadlocked. Also what the
// report and the dump say of a fiber joining a task of another loop.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <stdexcept>
#include <string>

#include "fiberloop.h"
#include "tests/group_helpers.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

using testing::unpinned;

TEST(GroupDeadlock, AGroupWideDeadlockIsReportedNamingEveryParkedFiberOnEveryLoop) {
  Event never;  // outlives the group: its fibers wait on it until ~LoopGroup
  LoopGroup group(unpinned(2));
  try {
    group.run([&] {
      auto other = group.spawn_on(1, SpawnOptions{.name = "stuck-on-1"}, [&] { never.wait(); });
      never.wait();
      other.join();
    });
    FAIL() << "no deadlock reported";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("deadlock"), std::string::npos) << what;
    EXPECT_NE(what.find("== loop 0"), std::string::npos) << what;
    EXPECT_NE(what.find("== loop 1"), std::string::npos) << what;
    EXPECT_NE(what.find("'stuck-on-1' parked"), std::string::npos) << what;
    EXPECT_NE(what.find("waiting on an Event"), std::string::npos) << what;
  }
}

TEST(GroupDeadlock, ALoopWaitingOnAnotherLoopIsNotDeadlocked) {
  const int v = run_group(
      [] {
        Channel<int> ch;
        auto producer = LoopGroup::current()->spawn_on(1, [&ch] {
          this_fiber::sleep_for(300ms);  // loop 0 waits the whole time, with nothing to do
          ch.send(5);
        });
        const int got = *ch.recv();
        producer.join();
        return got;
      },
      unpinned(2));
  EXPECT_EQ(v, 5);
}

TEST(GroupDeadlock, ALoneLoopWaitingOnAGroupIsNotDeadlocked) {
  // The group's threads are fiberloop's own, but they will end the wait.
  const int v = fiberloop::run([] {
    LoopGroup group(unpinned(2));
    auto far = group.spawn_on(1, [] {
      this_fiber::sleep_for(50ms);
      return 9;
    });
    return far.join();  // parks this lone loop's fiber on the group's
  });
  EXPECT_EQ(v, 9);
}

// The same when the lone loop's fiber waits on a primitive the group's
// fiber will set or send to: its first use is the wait, on the lone loop,
// so the wait is a local one (it was reported as a deadlock at once: the
// group's threads counted as fiberloop's own, which cannot post).
TEST(GroupDeadlock, ALoneLoopWaitingOnAnEventAGroupFiberSetsIsNotDeadlocked) {
  LoopGroup group(unpinned(1));
  const bool set = fiberloop::run([&] {
    Event ev;
    auto setter = group.spawn_on(0, [&ev] {
      this_fiber::sleep_for(50ms);
      ev.set();
    });
    ev.wait();
    setter.join();
    return ev.is_set();
  });
  EXPECT_TRUE(set);
}

TEST(GroupDeadlock, ALoneLoopReceivingWhatAGroupFiberSendsIsNotDeadlocked) {
  LoopGroup group(unpinned(1));
  const int got = fiberloop::run([&] {
    Channel<int> ch;
    auto sender = group.spawn_on(0, [&ch] {
      this_fiber::sleep_for(50ms);
      ch.send(5);
    });
    const int v = *ch.recv();
    sender.join();
    return v;
  });
  EXPECT_EQ(got, 5);
}

// A group whose main waits on another group's task: that group's thread
// will end the wait, so this is no deadlock (it was reported as one, and
// main cancelled, once its loop had waited a while).
TEST(GroupDeadlock, AGroupWaitingOnAnotherGroupIsNotDeadlocked) {
  LoopGroup far_group(unpinned(1));
  LoopGroup group(unpinned(1));
  auto far = far_group.spawn_on(0, [] {
    this_fiber::sleep_for(300ms);  // long past the watcher's first looks
    return 7;
  });
  EXPECT_EQ(group.run([&] { return far.join(); }), 7);
}

// Fiber ids are per loop: the report says which loop a joined fiber is on.
// (A join within the group sets no timer of its own, or the joining loop
// would never count as stuck and the deadlock would go unreported.)
TEST(GroupDeadlock, ADeadlockThroughAJoinAcrossLoopsIsReportedNamingTheLoop) {
  Event never;  // outlives the group
  LoopGroup group(unpinned(2));
  FiberId stuck = 0;
  try {
    group.run([&] {
      auto other = group.spawn_on(1, [&] { never.wait(); });
      stuck = other.id();
      other.join();
    });
    FAIL() << "no deadlock reported";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("deadlock"), std::string::npos) << what;
    EXPECT_NE(what.find("joining fiber " + std::to_string(stuck) + " of loop 1"), std::string::npos)
        << what;
  }
}

TEST(GroupDeadlock, TheDumpSaysAJoinedFiberIsOfAnotherLoop) {
  Event release;  // outlives the group
  LoopGroup far(unpinned(1));
  auto far_task = far.spawn_on(0, [&] { release.wait(); });
  Loop loop;
  std::string seen;
  loop.run_until_complete([&] {
    auto joiner = loop.spawn([&] { far_task.join(); });
    const TimePoint give_up = Clock::now() + 10s;
    do {
      this_fiber::sleep_for(100us);
      std::ostringstream out;
      loop.dump(out);
      seen = out.str();
    } while (seen.find("joining") == std::string::npos && Clock::now() < give_up);
    release.set();
    joiner.join();
  });
  EXPECT_NE(seen.find("joining fiber " + std::to_string(far_task.id()) + " of another loop"),
            std::string::npos)
      << seen;
}

}  // namespace
}  // namespace fiberloop
