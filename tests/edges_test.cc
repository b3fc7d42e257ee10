// Edges a review found after issue 11's fixes, each a regression test: a
// generator body's with_timeout() scopes and unwinding follow the body from
// fiber to fiber; Tasks used from another thread or loop say so; and the
// corners of shutdown (a run_blocking job started by cleanup, a destructor
// that sleeps briefly, a generator driven by an unwinding destructor, a
// generator destroyed while its body runs). A loop's and a group's own
// lifetime: lifetime_test.cc.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "fiberloop.h"
#include "tests/shutdown_helpers.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

using testing::seconds_since;
using testing::shut_down;

// ---- a generator body's deadlines and unwinding ------------------------------

TEST(GeneratorTimeouts, AScopeOpenInABodyAcrossAYieldDoesNotInterruptTheConsumer) {
  std::string consumer, body;
  fiberloop::run([&] {
    Generator<int> g([&](Generator<int>::Context& co) {
      try {
        with_timeout(20ms, [&] {
          co.yield(1);
          this_fiber::sleep_for(1h);  // resumed after the deadline: it is the body's to take
        });
      } catch (const TimeoutError& e) {
        body = e.what();
      }
    });
    g.next();
    this_fiber::sleep_for(100ms);  // the consumer has no deadline of its own
    consumer = "slept";
    EXPECT_FALSE(g.next().has_value());
  });
  EXPECT_EQ(consumer, "slept");
  EXPECT_NE(body.find("with_timeout: 20 ms elapsed"), std::string::npos) << body;
}

TEST(GeneratorTimeouts, AScopeOutlivingTheFiberThatOpenedItTouchesNoOtherFiber) {
  std::string outcome;
  fiberloop::run([&] {
    Generator<int> g([](Generator<int>::Context& co) {
      with_timeout(20ms, [&] {
        co.yield(1);
        co.yield(2);
      });
    });
    spawn([&] { g.next(); }).join();  // fiber A opens the scope and ends
    this_fiber::sleep_for(100ms);     // the scope's timer fires with the body between resumes
    auto unrelated = spawn([] {       // may get A's recycled record
      this_fiber::sleep_for(5ms);
      return std::string("slept");
    });
    outcome = unrelated.join();
    while (g.next()) {  // the consumer finishes the body, which leaves the scope
    }
  });
  EXPECT_EQ(outcome, "slept");
}

// A body's 10 s wait that the consumer's deadline must cut short: the
// TimeoutError's message, or "" if the wait ran its length.
std::string wait_for_the_consumers_deadline() {
  try {
    this_fiber::sleep_for(10s);
  } catch (const TimeoutError& e) {
    return e.what();
  }
  return "";
}

// Waits until the enclosing with_timeout() expires, and catches it: the
// caller goes on inside its scope, expired.
void outlive_the_deadline() {
  try {
    this_fiber::sleep_for(1h);
  } catch (const TimeoutError&) {
  }
}

// The consumer's deadline covers the body it resumes: a body waits inside the
// consumer's with_timeout() as much as the consumer does. Before the fix,
// resuming the body cleared the consumer's expired timeout, or the body's
// own expired scope did as it ended (the body waited its full 10 s), and a
// deadline that fired in the body's wait did not name its scope.
TEST(GeneratorTimeouts, AConsumersExpiredDeadlineInterruptsTheBodysWait) {
  std::string body;
  double took = 0;
  fiberloop::run([&] {
    Generator<int> g([&](Generator<int>::Context& co) {
      try {
        this_fiber::sleep_for(10s);
      } catch (const TimeoutError& e) {
        body = e.what();
        throw;
      }
      co.yield(1);
    });
    const TimePoint start = Clock::now();
    EXPECT_THROW(with_timeout(20ms,
                              [&] {
                                outlive_the_deadline();
                                g.next();
                              }),
                 TimeoutError);
    took = seconds_since(start);
  });
  EXPECT_NE(body.find("with_timeout: 20 ms elapsed"), std::string::npos) << body;
  EXPECT_LT(took, 5.0);
}

TEST(GeneratorTimeouts, AConsumersDeadlineThatExpiresDuringTheBodysWaitNamesTheConsumersScope) {
  std::string body;
  fiberloop::run([&] {
    Generator<int> g([&](Generator<int>::Context& co) {
      body = wait_for_the_consumers_deadline();
      co.yield(1);
    });
    with_timeout(20ms, [&] { EXPECT_EQ(g.next(), 1); });
  });
  EXPECT_NE(body.find("with_timeout: 20 ms elapsed"), std::string::npos) << body;
}

TEST(GeneratorTimeouts, ABodysOwnExpiredScopeEndingLeavesTheConsumersTimeoutPending) {
  std::string second;
  fiberloop::run([&] {
    Generator<int> g([&](Generator<int>::Context& co) {
      try {
        with_timeout(5ms, [&] {
          co.yield(1);
          this_fiber::yield();  // its own scope expired between resumes
        });
      } catch (const TimeoutError&) {
      }
      second = wait_for_the_consumers_deadline();  // the consumer's scope expired too
      co.yield(2);
    });
    with_timeout(20ms, [&] {
      EXPECT_EQ(g.next(), 1);
      outlive_the_deadline();
      EXPECT_EQ(g.next(), 2);
    });
  });
  EXPECT_NE(second.find("with_timeout: 20 ms elapsed"), std::string::npos) << second;
}

TEST(GeneratorTimeouts, TheDeadlineReachesAGeneratorTheBodyItselfConsumes) {
  std::string inner;
  fiberloop::run([&] {
    Generator<int> in([&](Generator<int>::Context& co) {
      inner = wait_for_the_consumers_deadline();
      co.yield(1);
    });
    Generator<int> out([&](Generator<int>::Context& co) {
      with_timeout(1h, [&] { co.yield(*in.next() + 1); });  // an open scope of its own
    });
    with_timeout(20ms, [&] { EXPECT_EQ(out.next(), 2); });
    EXPECT_FALSE(out.next().has_value());  // the chains were cut back where they joined
  });
  EXPECT_NE(inner.find("with_timeout: 20 ms elapsed"), std::string::npos) << inner;
}

TEST(GeneratorTimeouts, InterruptsWaitWhileTheConsumerUnwinds) {
  // A destructor run by unwinding drives a generator whose body parks: a
  // cancel must wait, as it does for a wait in the destructor itself.
  std::string outcome;
  fiberloop::run([&] {
    auto x = spawn([] {
      Generator<int> g([](Generator<int>::Context& co) {
        this_fiber::sleep_for(20ms);
        co.yield(1);
      });
      struct Drain {
        Generator<int>& g;
        ~Drain() { g.next(); }
      } drain{g};
      throw std::runtime_error("boom");
    });
    this_fiber::yield();  // x throws; ~Drain parks in the body's sleep
    x.cancel();
    try {
      x.join();
    } catch (const std::exception& e) {
      outcome = e.what();
    } catch (const Cancelled&) {
      outcome = "Cancelled";
    }
  });
  EXPECT_EQ(outcome, "boom");
}

TEST(GeneratorDeathTest, DestroyingAGeneratorWhoseBodyIsParkedInAnotherFiberIsRefused) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(fiberloop::run([] {
                 auto g = std::make_unique<Generator<int>>([](Generator<int>::Context& co) {
                   this_fiber::sleep_for(20ms);
                   co.yield(1);
                 });
                 auto a = spawn([&] { g->next(); });
                 this_fiber::yield();  // a parks inside the body
                 g.reset();
               }),
               "a Generator was destroyed while its body was running");
}

// ---- Tasks from another thread or loop ------------------------------------------

TEST(TaskThreads, JoinAndCancelWorkFromAPlainThread) {
  // Before issue 13 they were refused; now a plain thread's join blocks it
  // and its cancel travels through the loop's cross-thread queue.
  bool cancelled = false;
  fiberloop::run([&] {
    Event never;
    auto t = spawn([&] { never.wait(); });
    this_fiber::yield();
    std::thread other([&] {
      EXPECT_FALSE(t.done());
      t.cancel();
      try {
        t.join();
      } catch (const Cancelled&) {
        cancelled = true;
      }
      EXPECT_TRUE(t.done());
    });
    run_blocking([&other] { other.join(); });
  });
  EXPECT_TRUE(cancelled);
}

TEST(TaskThreads, WaitAnyOnATaskOfAnotherLoopIsRefused) {
  std::string what;
  std::atomic<bool> go{false};
  Task<void> foreign;
  std::atomic<bool> made{false};
  std::thread other([&] {
    fiberloop::run([&] {
      foreign = spawn([&] {
        while (!go) this_fiber::sleep_for(1ms);
      });
      made = true;
      foreign.join();
    });
  });
  while (!made) std::this_thread::sleep_for(1ms);
  fiberloop::run([&] {
    try {
      wait_any(foreign);
    } catch (const std::logic_error& e) {
      what = e.what();
    }
  });
  go = true;
  other.join();
  EXPECT_NE(what.find("runs on another loop"), std::string::npos) << what;
  EXPECT_NE(what.find("gather and Task::join take tasks of any loop"), std::string::npos) << what;
}

// ---- shutdown corners ------------------------------------------------------------

TEST(ShutdownCorners, ARunBlockingJobAskedForByACleanupNeitherRunsNorHoldsUpTheLoop) {
  std::atomic<bool> ran{false};
  auto [took, err] = shut_down([&](Loop& loop) {
    loop.spawn([&] {
      try {
        Event never;
        never.wait();
      } catch (const Cancelled&) {
        run_blocking([&] {
          std::this_thread::sleep_for(2s);
          ran = true;
        });
        throw;
      }
    });
    loop.call_soon([&loop] { loop.stop(); });
    loop.run();
  });
  EXPECT_LT(took, 1.0);
  EXPECT_FALSE(ran);
}

// A cleanup that spawns into a Nursery while the loop closes: the spawn is
// cancelled before it runs, and the nursery does not wait for it (it
// waited for ever, and the shutdown abandoned the owner).
TEST(ShutdownCorners, ASpawnIntoANurseryWhileTheLoopClosesDoesNotHangTheOwner) {
  std::atomic<bool> owner_ended{false};
  auto [took, err] = shut_down([&](Loop& loop) {
    loop.spawn([&] {
      struct Ended {
        std::atomic<bool>& flag;
        ~Ended() { flag = true; }
      } ended{owner_ended};
      Nursery n;
      n.spawn([] { this_fiber::sleep_for(1h); });
      try {
        this_fiber::sleep_for(1h);
      } catch (const Cancelled&) {
        n.spawn([] {});  // a last flush, say
        throw;
      }
    });
    loop.call_soon([&loop] { loop.stop(); });
    loop.run();
  });
  EXPECT_TRUE(owner_ended);
  EXPECT_EQ(err.find("abandoned"), std::string::npos) << err;
}

TEST(ShutdownCorners, ADestructorThatSleepsBrieflyWhileUnwindingCompletes) {
  // Unwinding code cannot be interrupted; what it waits for gets the
  // shutdown's grace (100 ms).
  std::atomic<bool> done{false};
  auto [took, err] = shut_down([&](Loop& loop) {
    loop.spawn([&] {
      struct Flush {
        std::atomic<bool>& done;
        ~Flush() {
          this_fiber::sleep_for(1ms);
          done = true;
        }
      } flush{done};
      Event never;
      never.wait();
    });
    loop.call_soon([&loop] { loop.stop(); });
    loop.run();
  });
  EXPECT_LT(took, 1.0);
  EXPECT_TRUE(done) << err;
  EXPECT_EQ(err, "");
}

TEST(ShutdownCorners, AGeneratorDrivenByAnUnwindingDestructorIsNotInterrupted) {
  bool drained = false;
  auto [took, err] = shut_down([&](Loop& loop) {
    loop.spawn([&] {
      Generator<int> g([](Generator<int>::Context& co) {
        for (int i = 0;; ++i) {
          this_fiber::yield();  // a body that waits, as one reading a socket would
          co.yield(i);
        }
      });
      struct Drain {
        Generator<int>& g;
        bool& drained;
        ~Drain() { drained = g.next().has_value(); }
      } drain{g, drained};
      Event never;
      never.wait();  // cancelled by the shutdown
    });
    loop.call_soon([&loop] { loop.stop(); });
    loop.run();
  });
  EXPECT_TRUE(drained);
  EXPECT_EQ(err, "");
}

}  // namespace
}  // namespace fiberloop
