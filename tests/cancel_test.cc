// Cancellation: delivered at suspension points, runs destructors, is not a
// std::exception, wakes parked fibers at once; loop shutdown unwinds fibers.
#include <string>
#include <thread>

#include "loop/internal/scheduler.h"
#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using testing::LoopTest;
using Cancel = LoopTest;

struct SetOnDestroy {
  bool& flag;
  ~SetOnDestroy() { flag = true; }
};

// Parks the calling fiber until cancelled: nothing else can wake it.
using testing::park_forever;

TEST_F(Cancel, RunsDestructorsAndIsNotSwallowedByStdException) {
  bool destroyed = false;
  bool swallowed = false;
  run([&] {
    auto t = spawn([&] {
      SetOnDestroy guard{destroyed};
      try {
        for (;;) this_fiber::yield();
      } catch (const std::exception&) {
        swallowed = true;  // must not happen: Cancelled is not a std::exception
      }
    });
    this_fiber::yield();
    t.cancel();
    EXPECT_THROW(t.join(), Cancelled);
  });
  EXPECT_TRUE(destroyed);
  EXPECT_FALSE(swallowed);
}

TEST_F(Cancel, ParkedFiberWakesAtOnce) {
  std::string trace;
  run([&] {
    auto t = spawn([&] {
      trace += "parked ";
      try {
        park_forever();
      } catch (const Cancelled&) {
        trace += "cancelled ";
        throw;
      }
    });
    this_fiber::yield();
    t.cancel();
    EXPECT_THROW(t.join(), Cancelled);
    trace += "joined";
  });
  EXPECT_EQ(trace, "parked cancelled joined");
}

TEST_F(Cancel, BeforeTheFirstRunTheBodyNeverRuns) {
  bool ran = false;
  bool callable_destroyed = false;
  run([&] {
    auto t = spawn([&, guard = std::make_shared<SetOnDestroy>(callable_destroyed)] { ran = true; });
    t.cancel();
    EXPECT_THROW(t.join(), Cancelled);
  });
  EXPECT_FALSE(ran);
  EXPECT_TRUE(callable_destroyed);
}

TEST_F(Cancel, AFiberParkedInJoinIsCancelledNotItsTarget) {
  run([&] {
    auto target = spawn([] { park_forever(); });
    auto waiter = spawn([&] { target.join(); });
    this_fiber::yield();
    waiter.cancel();
    EXPECT_THROW(waiter.join(), Cancelled);
    EXPECT_FALSE(target.done());
    target.cancel();
    EXPECT_THROW(target.join(), Cancelled);
  });
}

TEST_F(Cancel, DeliveredOnceAFiberMayCatchAndGoOn) {
  int after = run([] {
    auto t = spawn([] {
      try {
        park_forever();
      } catch (const Cancelled&) {
      }
      this_fiber::yield();  // no second Cancelled: it was delivered once
      return 5;
    });
    this_fiber::yield();
    t.cancel();
    return t.join();
  });
  EXPECT_EQ(after, 5);
}

TEST_F(Cancel, CancellingAFinishedFiberIsANoOp) {
  run([] {
    auto t = spawn([] { return 1; });
    this_fiber::yield();
    t.cancel();
    EXPECT_EQ(t.join(), 1);
  });
}

TEST_F(Cancel, CancelledFibersAreNotReportedAsFailures) {
  int reports = 0;
  loop().set_exception_handler([&](std::exception_ptr, const FiberInfo&) { ++reports; });
  run([] {
    auto t = spawn([] { park_forever(); });
    this_fiber::yield();
    t.cancel();
    t.detach();
    this_fiber::yield();
  });
  EXPECT_EQ(reports, 0);
}

TEST(Shutdown, LoopDestructionUnwindsParkedAndReadyFibers) {
  int unwound = 0;
  struct Count {
    int& n;
    ~Count() { ++n; }
  };
  {
    Loop loop;
    for (int i = 0; i < 10; ++i) {
      loop.spawn([&] {
        Count c{unwound};
        park_forever();
      });
      loop.spawn([&] {
        Count c{unwound};
        for (;;) this_fiber::yield();
      });
    }
    loop.spawn([&] {
      this_fiber::yield();  // by now every fiber above has started
      loop.stop();
    });
    loop.run();
  }
  EXPECT_EQ(unwound, 20);
  EXPECT_EQ(internal::StackPool::this_thread().stats().outstanding, 0u);
}

TEST(Shutdown, AFiberThatIgnoresCancellationIsReportedNotFreedUnderItsFrame) {
  ::testing::internal::CaptureStderr();
  // On a thread of its own: the leaked stack goes with the thread's pool.
  std::thread([] {
    Loop loop;
    loop.spawn([] {
      for (;;) {
        try {
          park_forever();
        } catch (const Cancelled&) {
        }
      }
    });
    // Stopped, not run out of work: with the test's main thread waiting in
    // join(), a loop whose fibers wait counts on that thread to post.
    loop.call_soon([&loop] { loop.stop(); });
    loop.run();
  }).join();
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("would not end after cancellation"), std::string::npos) << err;
}

}  // namespace
}  // namespace fiberloop
