// LoopGroup's bad input: spawn_on past the size, more loops than CPUs,
// destroying a group loop by hand, run(), dump() and stats() on a loop's
// thread outside a fiber and after stop(), and callbacks of two loops sharing each other's
// primitives at once (the rest of the group: group_test.cc).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fiberloop.h"
#include "tests/group_helpers.h"
#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

using testing::unpinned;

TEST(Group, SpawnOnPastTheSizeThrowsOutOfRangeStatingTheSize) {
  LoopGroup group(unpinned(2));
  try {
    group.spawn_on(2, [] {});
    FAIL() << "no exception";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("has 2 loops"), std::string::npos) << e.what();
  }
  EXPECT_THROW(group.loop(5), std::out_of_range);
}

TEST(Group, MoreLoopsThanCpusWorkUnpinnedWithOneWarning) {
  ::testing::internal::CaptureStderr();
  std::size_t size = 0;
  {
    GroupOptions options;
    options.loops = 64;  // more than any test machine's mask
    LoopGroup group(options);
    size = group.size();
    group.run([&group] {
      std::vector<Task<std::size_t>> all;
      for (std::size_t i = 0; i < group.size(); ++i) {
        all.push_back(group.spawn_on(i, [] { return Loop::current()->index(); }));
      }
      for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].join(), i);
    });
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(size, 64u);
  EXPECT_NE(err.find("run unpinned"), std::string::npos) << err;
  EXPECT_EQ(err.find("run unpinned"), err.rfind("run unpinned")) << "warned more than once";
}

TEST(Group, DestroyingAGroupLoopByHandThrowsLogicError) {
  LoopGroup group(unpinned(2));
  // On the loop's own thread, so that only the group rule stands in the way.
  auto what = group.spawn_on(1, [&group] {
    try {
      group.loop(1).~Loop();
      return std::string("(no exception)");
    } catch (const std::logic_error& e) {
      return std::string(e.what());
    }
  });
  const std::string w = what.join();
  EXPECT_NE(w.find("belongs to a LoopGroup"), std::string::npos) << w;
  EXPECT_EQ(group.run([] { return 3; }), 3);  // the loop is intact
}

TEST(Group, RunOnALoopsThreadOutsideAnyFiberThrowsNamingRun) {
  LoopGroup group(unpinned(1));
  Loop lone;  // this thread's
  std::atomic<bool> ran{false};
  try {
    group.run([&ran] { ran = true; });
    FAIL() << "no logic_error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("LoopGroup::run"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(ran);  // refused before main was spawned
  EXPECT_EQ(lone.run_until_complete([&group] { return group.run([] { return 4; }); }), 4);
}

// dump() and stats() wait for every loop's answer: refused where that
// would block a loop, and once the group is stopped, each naming itself
// (they said "Task::join must wait" and "LoopGroup::spawn_on"), and dump()
// writes nothing unless every loop answered (it wrote "== loop 0 of 2").
TEST(Group, DumpStatsAndRunRefusedWhereTheyCannotWaitNameThemselves) {
  LoopGroup group(unpinned(2));
  std::promise<std::vector<std::string>> in_callback;
  group.loop(1).call_soon_threadsafe([&] {
    std::ostringstream out;
    in_callback.set_value({testing::error_of([&] { group.dump(out); }),
                           testing::error_of([&] { (void)group.stats(); }), out.str()});
  });
  const std::vector<std::string> refused = in_callback.get_future().get();
  EXPECT_NE(refused[0].find("LoopGroup::dump must wait for the other loops' answers, but was "
                            "called on a loop's thread outside any fiber"),
            std::string::npos)
      << refused[0];
  EXPECT_NE(refused[1].find("LoopGroup::stats must wait"), std::string::npos) << refused[1];
  EXPECT_EQ(refused[2], "");

  std::ostringstream out;
  group.dump(out);  // from this plain thread: every loop, and the fiber that wrote each
  EXPECT_NE(out.str().find("== loop 1 of 2"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("'LoopGroup::dump' running"), std::string::npos) << out.str();

  group.stop();
  std::ostringstream after;
  EXPECT_NE(testing::error_of([&] {
              group.dump(after);
            }).find("LoopGroup::dump: the group was stopped (LoopGroup::stop)"),
            std::string::npos);
  EXPECT_EQ(after.str(), "");
  EXPECT_NE(testing::error_of([&] {
              (void)group.stats();
            }).find("LoopGroup::stats: the group was stopped"),
            std::string::npos);
  EXPECT_NE(
      testing::error_of([&] { group.run([] {}); }).find("LoopGroup::run: the group was stopped"),
      std::string::npos);
}

// A group of one loop, asked from that loop's own callback: nothing to
// wait for, so dump() and stats() answer (helper-74).
TEST(Group, DumpAndStatsOfTheCallersOwnLoopNeedNoWait) {
  LoopGroup group(unpinned(1));
  std::promise<std::string> answer;
  group.loop(0).call_soon_threadsafe([&] {
    std::ostringstream out;
    group.dump(out);
    answer.set_value(out.str() + " fibers=" + std::to_string(group.stats().fibers_alive));
  });
  const std::string got = answer.get_future().get();
  EXPECT_NE(got.find("== loop 0 of 1"), std::string::npos) << got;
  EXPECT_NE(got.find(" fibers="), std::string::npos) << got;
}

TEST(Group, CallbacksOnTwoLoopsSharingEachOthersPrimitivesAtOnceDoNotHang) {
  // A loop's callback (not a fiber) that uses another loop's primitive waits
  // for that loop to share it, and meanwhile answers its own queue: two
  // loops asking each other at the same moment both get through.
  LoopGroup group(unpinned(2));
  for (int round = 0; round < 20; ++round) {
    Event on0, on1;
    // Each Event is made local to its loop by a first use there.
    group.spawn_on(0, [&] { (void)on0.wait_for(0ms); }).join();
    group.spawn_on(1, [&] { (void)on1.wait_for(0ms); }).join();
    std::atomic<int> go{0};
    auto a = group.spawn_on(0, [&] {
      Loop::current()->call_soon([&] {
        ++go;
        while (go < 2) {
        }
        on1.set();  // loop 1's, from loop 0's callback
      });
      on0.wait();
    });
    auto b = group.spawn_on(1, [&] {
      Loop::current()->call_soon([&] {
        ++go;
        while (go < 2) {
        }
        on0.set();
      });
      on1.wait();
    });
    a.join();
    b.join();
  }
}

}  // namespace
}  // namespace fiberloop
