// run_blocking: the loop runs on while a worker blocks, exceptions and
// results come back, a cancelled or timed-out caller returns at once while
// the job runs on, and nothing of the job outlives the hand-off.
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using RunBlocking = testing::LoopTest;

Duration elapsed_since(TimePoint start) { return Clock::now() - start; }

TEST_F(RunBlocking, RunBlockingKeepsOtherFibersRunning) {
  std::string trace;
  std::atomic<bool> ticked{false};
  run([&] {
    auto ticker = spawn([&] {
      for (int i = 0; i < 3; ++i) {
        this_fiber::sleep_for(10ms);
        trace += "t";
      }
      ticked = true;
    });
    int v = run_blocking([&ticked] {
      // Really blocks a thread, until the fiber has ticked three times (10 s
      // at most): the loop ran it meanwhile.
      for (int i = 0; i < 10'000 && !ticked; ++i) std::this_thread::sleep_for(1ms);
      return 42;
    });
    trace += std::to_string(v);
    ticker.join();
  });
  EXPECT_EQ(trace, "ttt42");
}

TEST_F(RunBlocking, RunBlockingPropagatesExceptions) {
  run([] {
    EXPECT_THROW(run_blocking([]() -> int { throw std::runtime_error("disk on fire"); }),
                 std::runtime_error);
    run_blocking([] {});  // void works
  });
}

// The job and what it captures die on the worker, before the fiber resumes:
// nothing of the job is released on another thread after the fiber has moved
// on (the exception it threw, a capture's slow destructor).
// A fiber call inside a job (read_file, itself a run_blocking) names the
// worker thread and says where the call belongs, instead of advising to
// create a Loop.
TEST_F(RunBlocking, AFiberCallInsideAJobSaysItIsOnAWorkerThread) {
  run([] {
    std::string what;
    try {
      (void)run_blocking([] { return read_file("/etc/hostname"); });
    } catch (const std::logic_error& e) {
      what = e.what();
    }
    EXPECT_NE(what.find("run_blocking job, on a worker thread"), std::string::npos) << what;
    EXPECT_NE(what.find("from the fiber instead"), std::string::npos) << what;
  });
}

TEST_F(RunBlocking, RunBlockingReleasesTheJobBeforeResuming) {
  struct SlowToDie {
    std::atomic<bool>* died;
    std::thread::id* died_on;
    ~SlowToDie() {
      if (died == nullptr) return;
      std::this_thread::sleep_for(50ms);
      *died_on = std::this_thread::get_id();
      died->store(true);
    }
    SlowToDie(std::atomic<bool>* d, std::thread::id* t) : died(d), died_on(t) {}
    SlowToDie(SlowToDie&& o) noexcept : died(std::exchange(o.died, nullptr)), died_on(o.died_on) {}
  };
  std::atomic<bool> died{false};
  std::thread::id died_on;
  run([&] {
    run_blocking([guard = SlowToDie(&died, &died_on)] {});
    EXPECT_TRUE(died.load()) << "the job's captures outlived run_blocking";
    EXPECT_NE(died_on, std::this_thread::get_id()) << "a capture's destructor ran on the loop";
    try {
      run_blocking([guard = SlowToDie(nullptr, nullptr)]() -> int {
        throw std::runtime_error("disk on fire");
      });
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "disk on fire");  // still ours to read
    }
  });
}

TEST_F(RunBlocking, RunBlockingSurvivesCancellation) {
  std::atomic<bool> finished{false};
  std::atomic<bool> release{false};
  run([&] {
    auto waiter = spawn([&] {
      // Runs until released after the join (10 s at most): a join that
      // waited for it would take the whole 10 s.
      return run_blocking([&] {
        for (int i = 0; i < 10'000 && !release; ++i) std::this_thread::sleep_for(1ms);
        finished = true;
        return 1;
      });
    });
    this_fiber::sleep_for(10ms);
    const TimePoint start = Clock::now();
    waiter.cancel();
    EXPECT_THROW(waiter.join(), Cancelled);
    EXPECT_LT(elapsed_since(start), 5s) << "the cancelled fiber must not wait for the job";
    EXPECT_FALSE(finished);
    release = true;
  });
  // run() counts the job as work in progress: it returns once the job is
  // done, and its result is dropped.
  loop().run();
  EXPECT_TRUE(finished);
  EXPECT_EQ(loop().stats().blocking_jobs, 0u);
}

TEST_F(RunBlocking, RunBlockingWithTimeout) {
  // The job runs until the timeout has been seen (10 s at most): it cannot
  // finish first however late the loop's thread gets the CPU.
  auto timed_out = std::make_shared<std::atomic<bool>>(false);
  run([&] {
    EXPECT_THROW(with_timeout(20ms,
                              [&] {
                                run_blocking([timed_out] {
                                  for (int i = 0; i < 10'000 && !*timed_out; ++i) {
                                    std::this_thread::sleep_for(1ms);
                                  }
                                });
                              }),
                 TimeoutError);
    *timed_out = true;
  });
}

}  // namespace
}  // namespace fiberloop
