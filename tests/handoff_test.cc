// What one thread hands another must be the last it touches: once the other
// side has seen the hand-off (a wait returned, a join returned, a loop ran
// out of work), it may destroy what was handed over, and the hander must no
// longer be in it. Each test destroys the object (a primitive, a loop) at
// the earliest moment the API allows, many times over, so that under
// AddressSanitizer and ThreadSanitizer (CI) a late touch is a reported
// use-after-free or race, and in a plain build a crash or a hang.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "fiberloop.h"
#include "tests/race_rounds.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

constexpr int kRounds = testing::kRaceRounds;
using testing::two_loops;

// set() on one loop, wait() on the other, and the waiter deletes the Event
// as soon as wait() returns: set() must be out of it by then, even when the
// waiter never parked (it saw the flag at once).
TEST(Handoff, AnEventMayBeDestroyedAsSoonAsWaitReturns) {
  LoopGroup group(two_loops());
  for (int round = 0; round < kRounds; ++round) {
    auto* ev = new Event;
    auto setter = group.spawn_on(1, [ev] { ev->set(); });
    auto waiter = group.spawn_on(0, [ev] {
      ev->wait();
      delete ev;
    });
    waiter.join();
    setter.join();
  }
}

TEST(Handoff, AnEventMayBeDestroyedAsSoonAsATimedWaitReturns) {
  LoopGroup group(two_loops());
  for (int round = 0; round < kRounds; ++round) {
    auto* ev = new Event;
    auto setter = group.spawn_on(1, [ev] { ev->set(); });
    auto waiter = group.spawn_on(0, [ev] {
      EXPECT_TRUE(ev->wait_for(10s));
      delete ev;
    });
    waiter.join();
    setter.join();
  }
}

TEST(Handoff, AWaitGroupMayBeDestroyedAsSoonAsWaitReturns) {
  LoopGroup group(two_loops());
  for (int round = 0; round < kRounds; ++round) {
    auto* wg = new WaitGroup;
    wg->add(1);
    auto worker = group.spawn_on(1, [wg] { wg->done(); });
    auto waiter = group.spawn_on(0, [wg] {
      wg->wait();
      delete wg;
    });
    waiter.join();
    worker.join();
  }
}

// The same from a plain thread: it sets, the fiber waits and deletes.
TEST(Handoff, AnEventSetByAPlainThreadMayBeDestroyedWhenWaitReturns) {
  constexpr int kThreadRounds = kRounds / 10;
  run([] {
    for (int round = 0; round < kThreadRounds; ++round) {
      auto* ev = new Event;
      std::thread setter([ev] { ev->set(); });
      ev->wait();
      delete ev;
      run_blocking([&setter] { setter.join(); });
    }
  });
}

// A lone loop joins a fiber of a group's loop and ends as soon as the join
// returns: the group's loop must be done waking the joiner (and its loop)
// by then. The same with a join that times out while the target finishes.
TEST(Handoff, ALoopMayEndAsSoonAsAJoinOfAnotherLoopsFiberReturns) {
  LoopGroup group(two_loops());
  for (int round = 0; round < kRounds; ++round) {
    auto task = group.spawn_on(round % 2, [round] { return round; });
    EXPECT_EQ(run([&task] { return task.join(); }), round);
  }
}

TEST(Handoff, ALoopMayEndAsSoonAsATimedOutJoinGivesUp) {
  LoopGroup group(two_loops());
  for (int round = 0; round < kRounds; ++round) {
    auto task = group.spawn_on(round % 2, [] { this_fiber::yield(); });
    bool joined = false;
    run([&task, &joined] {
      try {
        with_timeout(1us, [&task] { task.join(); });
        joined = true;
      } catch (const TimeoutError&) {
        // the target did not finish first: the loop ends now all the same
      }
    });
    if (!joined) task.join();
  }
}

// A plain thread posts into a loop whose run() returns once the post ran,
// and the loop is destroyed at once: the poster must be out of the loop's
// queue by then. The same for the last KeepAlive and for stop().
TEST(Handoff, ALoopMayBeDestroyedAsSoonAsAPostRan) {
  constexpr int kThreadRounds = kRounds / 10;
  for (int round = 0; round < kThreadRounds; ++round) {
    auto loop = std::make_unique<Loop>();
    std::atomic<bool> ran{false};
    {
      auto keep = std::make_unique<Loop::KeepAlive>(loop->keep_alive());
      std::thread poster([&loop, &ran, keep = std::move(keep)]() mutable {
        loop->call_soon_threadsafe([&ran] { ran = true; });
        keep.reset();  // the last: run() may return, and the loop go
      });
      loop->run();
      loop.reset();
      poster.join();
    }
    EXPECT_TRUE(ran);
  }
}

// The same hand-off, timed to land while the loop decides whether it is
// done: the poster waits until the loop runs (its first callback), then
// posts and drops the last KeepAlive at once. A post queued before the last
// KeepAlive went must run before run() returns, wherever in its iteration
// the loop was when the two arrived. (The loop used to miss a post that
// came between its take_posts() and its look at the KeepAlives: with a
// 1 us pause put there by hand, this test lost posts in most runs.)
TEST(Handoff, APostQueuedBeforeTheLastKeepAliveWentRunsBeforeRunReturns) {
  constexpr int kThreadRounds = kRounds;
  int lost = 0;
  for (int round = 0; round < kThreadRounds; ++round) {
    Loop loop;
    std::atomic<bool> running{false};
    std::atomic<bool> ran{false};
    auto keep = std::make_unique<Loop::KeepAlive>(loop.keep_alive());
    // The callback lingers a little longer each round, so that the post and
    // the drop sweep over every point of the loop's next iteration.
    loop.call_soon([&running, round] {
      running.store(true, std::memory_order_release);
      for (int i = 0; i < round % 200; ++i) __builtin_ia32_pause();
    });
    std::thread poster([&loop, &running, &ran, keep = std::move(keep)]() mutable {
      while (!running.load(std::memory_order_acquire)) {
      }
      loop.call_soon_threadsafe([&ran] { ran = true; });
      keep.reset();
    });
    loop.run();
    poster.join();
    if (!ran) ++lost;
  }
  EXPECT_EQ(lost, 0) << "posts lost in " << kThreadRounds << " rounds";
}

TEST(Handoff, ALoopMayBeDestroyedAsSoonAsStopFromAnotherThreadReturnsRun) {
  constexpr int kThreadRounds = kRounds / 10;
  for (int round = 0; round < kThreadRounds; ++round) {
    auto loop = std::make_unique<Loop>();
    auto keep = std::make_unique<Loop::KeepAlive>(loop->keep_alive());
    std::thread stopper([&loop] { loop->stop(); });
    loop->run();
    keep.reset();
    loop.reset();
    stopper.join();
  }
}

}  // namespace
}  // namespace fiberloop
