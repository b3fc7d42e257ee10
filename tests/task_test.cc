// Task: join with values and exceptions, detach, the exception handler.
#include <memory>
#include <string>
#include <vector>

#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using testing::LoopTest;
using TaskTest = LoopTest;

TEST_F(TaskTest, JoinReturnsTheValue) {
  std::string s = run([] {
    auto t = spawn([] { return std::string(100, 'x'); });  // larger than the inline slot
    auto u = spawn([] { return 42; });
    return t.join() + std::to_string(u.join());
  });
  EXPECT_EQ(s, std::string(100, 'x') + "42");
}

TEST_F(TaskTest, MoveOnlyResults) {
  auto p = run([] {
    auto t = spawn([] { return std::make_unique<int>(5); });
    return t.join();
  });
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 5);
}

TEST_F(TaskTest, ChildThatFinishesBeforeJoinIsNotLost) {
  // A classic race: the child completes before anyone waits.
  int v = run([] {
    auto t = spawn([] { return 9; });
    this_fiber::yield();  // the child runs to completion here
    EXPECT_TRUE(t.done());
    return t.join();  // returns at once
  });
  EXPECT_EQ(v, 9);
}

TEST_F(TaskTest, JoinRethrowsTheFibersException) {
  run([] {
    auto t = spawn([]() -> int { throw std::runtime_error("child failed"); });
    try {
      t.join();
      ADD_FAILURE() << "join did not rethrow";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "child failed");
    }
  });
}

TEST_F(TaskTest, SecondJoinIsALogicError) {
  run([] {
    auto t = spawn([] { return 1; });
    EXPECT_EQ(t.join(), 1);
    try {
      t.join();
      ADD_FAILURE() << "second join did not throw";
    } catch (const std::logic_error& e) {
      EXPECT_NE(std::string(e.what()).find("already joined"), std::string::npos) << e.what();
    }
  });
}

TEST_F(TaskTest, SelfJoinIsALogicError) {
  run([] {
    auto holder = std::make_shared<Task<void>>();
    *holder = spawn([holder] { holder->join(); });
    EXPECT_THROW(holder->join(), std::logic_error);
    holder->detach();
  });
}

TEST_F(TaskTest, EmptyTaskIsALogicError) {
  Task<int> t;
  EXPECT_FALSE(t);
  EXPECT_TRUE(t.done());
  EXPECT_EQ(t.id(), 0u);
  EXPECT_THROW(t.join(), std::logic_error);
  EXPECT_THROW(t.cancel(), std::logic_error);
}

TEST_F(TaskTest, JoinFromOutsideAFiberRunsTheLoop) {
  auto t = loop().spawn([] {
    this_fiber::yield();
    return 3;
  });
  EXPECT_EQ(t.join(), 3);
}

TEST_F(TaskTest, FailedDetachedFiberGoesToTheHandlerAndTheLoopGoesOn) {
  std::vector<std::string> reports;
  loop().set_exception_handler(testing::collect_whats(reports, true));
  int after = run([] {
    SpawnOptions opts;
    opts.name = "doomed";
    spawn(opts, [] { throw std::runtime_error("oops"); }).detach();
    this_fiber::yield();
    this_fiber::yield();
    return 1;
  });
  EXPECT_EQ(after, 1);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0], "doomed: oops");
}

TEST_F(TaskTest, DroppedUnjoinedFailureIsReported) {
  int reports = 0;
  loop().set_exception_handler([&](std::exception_ptr, const FiberInfo&) { ++reports; });
  run([] {
    auto t = spawn([] { throw std::runtime_error("nobody looked"); });
    this_fiber::yield();
    EXPECT_TRUE(t.done());
  });  // t dropped unjoined here
  EXPECT_EQ(reports, 1);
}

TEST_F(TaskTest, DefaultHandlerNamesTheFiber) {
  ::testing::internal::CaptureStderr();
  run([] {
    SpawnOptions opts;
    opts.name = "worker-7";
    spawn(opts, [] { throw std::runtime_error("disk full"); });
    this_fiber::yield();
  });
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("'worker-7'"), std::string::npos) << err;
  EXPECT_NE(err.find("disk full"), std::string::npos) << err;
  EXPECT_NE(err.find("task_test.cc"), std::string::npos) << "no spawn site: " << err;
}

TEST(TaskOutlivesLoop, JoinAfterTheLoopIsGone) {
  Task<int> t;
  {
    Loop loop;
    t = loop.spawn([] { return 11; });
    loop.run();
  }
  EXPECT_TRUE(t.done());
  EXPECT_EQ(t.join(), 11);
}

TEST(TaskOutlivesLoop, UnfinishedFiberIsCancelledByTheLoopsEnd) {
  Task<int> t;
  {
    Loop loop;
    t = loop.spawn([] {
      for (;;) this_fiber::yield();
      return 0;
    });
  }
  EXPECT_THROW(t.join(), Cancelled);
}

}  // namespace
}  // namespace fiberloop
