// Task operations from another thread that reach what they name late: a
// cancel that arrives after its Task was dropped and the record given to a
// new fiber, and a join after the task's loop was destroyed.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "fiberloop.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

// Another thread cancels a task that is still running; before the cancel
// arrives, the loop's thread drops that (finished) task and spawns another,
// which takes the same record. The cancel must not reach the new fiber.
TEST(LateTaskOps, ACancelArrivingAfterItsTaskWasDroppedReachesNoOtherFiber) {
  Loop loop;
  std::atomic<int> phase{0};  // 1: the task runs; 2: its cancel is posted
  std::atomic<Task<void>*> running{nullptr};
  std::atomic<bool> quit{false};
  std::thread canceller([&] {
    while (!quit.load()) {
      if (phase.load() != 1) {
        std::this_thread::yield();
        continue;
      }
      running.load()->cancel();  // not done yet: posted to the loop
      phase = 2;
    }
  });
  int cancelled = 0;
  loop.run_until_complete([&] {
    for (int round = 0; round < 100; ++round) {
      phase = 0;
      Task<void> first = spawn([&] {
        phase = 1;
        while (phase.load() != 2) {
        }
      });
      running = &first;
      this_fiber::yield();  // `first` runs, and finishes before its cancel is taken
      first = Task<void>();
      Task<int> second = spawn([] { return 7; });  // reuses first's record
      try {
        EXPECT_EQ(second.join(), 7);
      } catch (const Cancelled&) {
        ++cancelled;
      }
    }
  });
  quit = true;
  canceller.join();
  EXPECT_EQ(cancelled, 0);
}

// A join on a plain thread after the task's loop, on another thread, has
// run it and been destroyed, with nothing between the two threads since
// the task was handed over: the join must still read what that loop wrote
// (it read the loop without ordering, which TSan reported as a race).
TEST(LateTaskOps, AJoinAfterTheTasksLoopIsDestroyedSeesItsOutcome) {
  for (int round = 0; round < 3; ++round) {
    Task<int> task;
    std::atomic<bool> handed{false}, joined{false};
    std::thread owner([&] {
      {
        Loop loop;
        task = loop.spawn([] { return 7; });
        handed = true;
        loop.run();
      }
      while (!joined.load(std::memory_order_relaxed)) std::this_thread::yield();
    });
    while (!handed.load()) std::this_thread::yield();
    std::this_thread::sleep_for(20ms);  // the loop has run the task and gone by now, as a rule
    EXPECT_EQ(task.join(), 7);
    joined.store(true, std::memory_order_relaxed);
    owner.join();
  }
}

}  // namespace
}  // namespace fiberloop
