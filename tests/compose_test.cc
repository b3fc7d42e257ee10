// Promise/Future, gather, wait_any, as_completed, TaskGroup.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;
using Compose = LoopTest;

TEST_F(Compose, PromiseSetFromACallLaterCallback) {
  int v = run([&] {
    Promise<int> p;
    Future<int> f = p.get_future();
    EXPECT_FALSE(f.ready());
    loop().call_later(5ms, [p]() mutable { p.set_value(42); });
    return f.get();
  });
  EXPECT_EQ(v, 42);
}

TEST_F(Compose, FutureExceptionsAndSecondSet) {
  run([] {
    Promise<std::string> p;
    auto f = p.get_future();
    p.set_exception(std::make_exception_ptr(std::runtime_error("nope")));
    EXPECT_THROW(f.get(), std::runtime_error);
    EXPECT_THROW(p.set_value("late"), std::logic_error);
    Promise<std::string> moved_to(std::move(p));
    EXPECT_THROW(p.set_value("x"), std::logic_error);  // moved from: it dereferenced null
    Promise<void> q;
    q.set_value();
    q.get_future().get();
  });
}

TEST_F(Compose, DoneCallbacksRunOnTheLoop) {
  std::string trace;
  run([&] {
    Promise<int> p;
    auto f = p.get_future();
    f.add_done_callback(
        [&](Future<int> done) { trace += "cb" + std::to_string(done.get()) + " "; });
    p.set_value(1);
    trace += "set ";  // the callback is scheduled, not run inline
    this_fiber::yield();
    this_fiber::yield();
    f.add_done_callback([&](Future<int>) { trace += "late "; });  // already ready
    this_fiber::sleep_for(1ms);
  });
  EXPECT_EQ(trace, "set cb1 late ");
}

TEST_F(Compose, FutureCompletedFromAnotherThread) {
  auto keep = loop().keep_alive();
  int v = run([&] {
    Promise<int> p;
    std::thread worker([&] {
      std::this_thread::sleep_for(10ms);
      loop().call_soon_threadsafe([p]() mutable { p.set_value(9); });
    });
    int got = p.get_future().get();
    worker.join();
    return got;
  });
  EXPECT_EQ(v, 9);
}

TEST_F(Compose, ADroppedPromiseBreaksInsteadOfHanging) {
  run([&] {
    Future<int> f;
    {
      Promise<int> p;
      f = p.get_future();
      auto copy = p;  // copies share one promise: only the last one breaks it
    }
    EXPECT_THROW(f.get(), BrokenPromise);

    // A waiter already parked wakes: here the only copy sat in a callback
    // that was cancelled.
    Promise<std::string> q;
    Future<std::string> g = q.get_future();
    TimerHandle h = loop().call_later(1h, [q]() mutable { q.set_value("never"); });
    q = Promise<std::string>();  // the callback holds the last copy of the first promise
    auto waiter = spawn([&] { return g.get(); });
    this_fiber::yield();
    h.cancel();
    EXPECT_THROW(waiter.join(), BrokenPromise);
  });
}

TEST_F(Compose, GatherReturnsAllValues) {
  run([] {
    auto a = spawn([] { return 1; });
    auto b = spawn([] { return std::string("two"); });
    auto c = spawn([] { this_fiber::sleep_for(1ms); });
    auto [x, y, z] = gather(a, b, c);
    EXPECT_EQ(x, 1);
    EXPECT_EQ(y, "two");
    (void)z;  // std::monostate for the void task
    std::vector<Task<int>> many;
    for (int i = 0; i < 5; ++i) many.push_back(spawn([i] { return i * i; }));
    EXPECT_EQ(gather(many), (std::vector<int>{0, 1, 4, 9, 16}));
  });
}

TEST_F(Compose, GatherRethrowsTheFirstFailureAfterAllFinished) {
  std::vector<std::string> reported;
  loop().set_exception_handler(testing::collect_whats(reported));
  bool slow_finished = false;
  run([&] {
    auto late_fail = spawn([]() -> int {
      this_fiber::sleep_for(5ms);
      throw std::runtime_error("second");
    });
    auto early_fail = spawn([]() -> int { throw std::runtime_error("first"); });
    auto slow = spawn([&] {
      this_fiber::sleep_for(10ms);
      slow_finished = true;
      return 3;
    });
    try {
      gather(late_fail, early_fail, slow);
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "first");
    }
    EXPECT_TRUE(slow_finished);
  });  // the other failure is not lost: reported when its Task is dropped
  EXPECT_EQ(reported, (std::vector<std::string>{"second"}));
}

TEST_F(Compose, WaitAnyAndAsCompleted) {
  run([] {
    auto slow = spawn([] { this_fiber::sleep_for(20ms); });
    auto fast = spawn([] { this_fiber::sleep_for(1ms); });
    EXPECT_EQ(wait_any(slow, fast), 1u);
    EXPECT_FALSE(slow.done());
    slow.join();

    // Deadlines from one base: the order holds however slowly the fibers start.
    std::vector<Task<int>> tasks;
    const TimePoint base = Clock::now();
    for (int ms : {15, 5, 10})
      tasks.push_back(spawn([ms, base] {
        this_fiber::sleep_until(base + std::chrono::milliseconds(ms));
        return ms;
      }));
    std::vector<int> order;
    for (std::size_t i : as_completed(tasks)) order.push_back(tasks[i].join());
    EXPECT_EQ(order, (std::vector<int>{5, 10, 15}));
  });
}

// Nothing in the vector could ever finish: an error, not a park for ever.
// as_completed over nothing simply yields nothing.
TEST_F(Compose, WaitAnyOfNoTasksThrowsAndAsCompletedYieldsNothing) {
  run([] {
    std::vector<Task<int>> none;
    try {
      wait_any(none);
      ADD_FAILURE() << "wait_any of no tasks returned";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("no tasks"), std::string::npos) << e.what();
    }
    int yielded = 0;
    for (std::size_t i : as_completed(none)) yielded += static_cast<int>(i) + 1;
    EXPECT_EQ(yielded, 0);
  });
}

TEST_F(Compose, CancellingGatherCancelsItsTasks) {
  run([] {
    auto a = spawn([] { this_fiber::sleep_for(10s); });
    auto b = spawn([] { this_fiber::sleep_for(10s); });
    EXPECT_THROW(with_timeout(5ms, [&] { gather(a, b); }), TimeoutError);
    EXPECT_THROW(a.join(), Cancelled);
    EXPECT_THROW(b.join(), Cancelled);
  });
}

TEST_F(Compose, TaskGroupJoinsAll) {
  run([] {
    TaskGroup group;
    auto& a = group.spawn([] { return 1; });
    auto& b = group.spawn([] {
      this_fiber::sleep_for(2ms);
      return 2;
    });
    group.join();
    EXPECT_TRUE(a.done() && b.done());
    EXPECT_EQ(a.join() + b.join(), 3);
  });
}

TEST_F(Compose, TaskGroupFirstFailureCancelsASleepingSibling) {
  std::vector<std::string> reported;
  loop().set_exception_handler(
      [&](std::exception_ptr, const FiberInfo& info) { reported.push_back(info.name); });
  bool sibling_unwound = false;
  run([&] {
    TaskGroup group;
    group.spawn([&] {
      struct Flag {
        bool& f;
        ~Flag() { f = true; }
      } flag{sibling_unwound};
      this_fiber::sleep_for(10s);
    });
    group.spawn([]() -> int {
      this_fiber::sleep_for(1ms);
      throw std::runtime_error("child failed");
    });
    const TimePoint start = Clock::now();
    try {
      group.join();
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "child failed");
    }
    EXPECT_LT(Clock::now() - start, 5s);
  });
  EXPECT_TRUE(sibling_unwound);
  EXPECT_TRUE(reported.empty()) << "the failure was rethrown; nothing to report";
}

TEST_F(Compose, TaskGroupOtherFailuresAreReportedNotLost) {
  std::vector<std::string> reported;
  loop().set_exception_handler(testing::collect_whats(reported));
  run([&] {
    TaskGroup group;
    group.spawn([] {  // fails second: while being cancelled by the first failure
      try {
        this_fiber::sleep_for(10s);
      } catch (const Cancelled&) {
        throw std::runtime_error("two");
      }
    });
    group.spawn([] {
      this_fiber::sleep_for(1ms);
      throw std::runtime_error("one");
    });
    try {
      group.join();
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "one");
    }
  });
  EXPECT_EQ(reported, (std::vector<std::string>{"two"}));
}

TEST_F(Compose, CancellingTheOwnerCancelsTheChildren) {
  int unwound = 0;
  run([&] {
    auto owner = spawn([&] {
      TaskGroup group;
      for (int i = 0; i < 3; ++i) {
        group.spawn([&] {
          struct Count {
            int& n;
            ~Count() { ++n; }
          } c{unwound};
          this_fiber::sleep_for(10s);
        });
      }
      group.join();
    });
    this_fiber::sleep_for(1ms);
    owner.cancel();
    EXPECT_THROW(owner.join(), Cancelled);
    EXPECT_EQ(unwound, 3);  // all children were done before the owner left
  });
}

TEST_F(Compose, TaskGroupDestructorJoins) {
  bool child_done = false;
  run([&] {
    TaskGroup group;
    group.spawn([&] {
      this_fiber::sleep_for(2ms);
      child_done = true;
    });
  });  // no join(): the destructor waits
  EXPECT_TRUE(child_done);
}

}  // namespace
}  // namespace fiberloop
