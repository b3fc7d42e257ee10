// Generator: lazy start, values, send, exceptions, unwinding, parking bodies.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using Ints = Generator<int>;

TEST(GeneratorTest, StartsLazilyAndYieldsInOrder) {
  std::string trace;
  Ints g([&](Ints::Context& co) {
    trace += "start ";
    for (int i = 0; i < 3; ++i) co.yield(i);
    trace += "end";
  });
  EXPECT_EQ(trace, "");  // nothing ran at construction
  EXPECT_EQ(g.next(), 0);
  EXPECT_EQ(trace, "start ");
  EXPECT_EQ(g.next(), 1);
  EXPECT_EQ(g.next(), 2);
  EXPECT_FALSE(g.done());
  EXPECT_EQ(g.next(), std::nullopt);
  EXPECT_TRUE(g.done());
  EXPECT_EQ(trace, "start end");
  EXPECT_EQ(g.next(), std::nullopt);  // stays finished
}

TEST(GeneratorTest, RangeFor) {
  Generator<std::string> words([](Generator<std::string>::Context& co) {
    co.yield("fibers");
    co.yield("are");
    co.yield("stackful");
  });
  std::vector<std::string> got;
  for (const std::string& w : words) got.push_back(w);
  EXPECT_EQ(got, (std::vector<std::string>{"fibers", "are", "stackful"}));
}

TEST(GeneratorTest, SendDeliversToThePendingYield) {
  // A running average: asyncio's classic coroutine that receives values.
  Generator<double, double> averager([](Generator<double, double>::Context& co) {
    double total = 0, count = 0, average = 0;
    for (;;) {
      double v = co.yield(average);
      total += v;
      ++count;
      average = total / count;
    }
  });
  EXPECT_EQ(averager.next(), 0.0);  // prime it
  EXPECT_EQ(averager.send(10), 10.0);
  EXPECT_EQ(averager.send(30), 20.0);
  EXPECT_EQ(averager.send(5), 15.0);
}

TEST(GeneratorTest, SendBeforeStartIsALogicError) {
  Generator<int, int> g([](Generator<int, int>::Context& co) { co.yield(1); });
  EXPECT_THROW(g.send(3), std::logic_error);
}

TEST(GeneratorTest, BodyExceptionComesOutOfNextOnce) {
  Ints g([](Ints::Context& co) {
    co.yield(1);
    throw std::runtime_error("generator broke");
  });
  EXPECT_EQ(g.next(), 1);
  EXPECT_THROW(g.next(), std::runtime_error);
  EXPECT_TRUE(g.done());
  EXPECT_EQ(g.next(), std::nullopt);
}

TEST(GeneratorTest, DestroyingAnUnfinishedGeneratorUnwindsItsBody) {
  bool unwound = false;
  {
    Ints g([&](Ints::Context& co) {
      struct Flag {
        bool& f;
        ~Flag() { f = true; }
      } flag{unwound};
      for (int i = 0;; ++i) co.yield(i);
    });
    EXPECT_EQ(g.next(), 0);
    EXPECT_EQ(g.next(), 1);
  }
  EXPECT_TRUE(unwound);
  EXPECT_EQ(internal::StackPool::this_thread().stats().outstanding, 0u);
}

TEST(GeneratorTest, NeverStartedGeneratorDestroysItsCallable) {
  auto token = std::make_shared<int>(1);
  {
    Ints g([token](Ints::Context& co) { co.yield(*token); });
    EXPECT_EQ(token.use_count(), 2);
  }
  EXPECT_EQ(token.use_count(), 1);
}

TEST(GeneratorTest, MoveKeepsThePosition) {
  Ints a([](Ints::Context& co) {
    for (int i = 0; i < 4; ++i) co.yield(i);
  });
  EXPECT_EQ(a.next(), 0);
  Ints b = std::move(a);
  EXPECT_EQ(b.next(), 1);
  EXPECT_THROW(a.next(), std::logic_error);
}

TEST(GeneratorTest, BodyMayParkItsFiberWhileTheLoopRunsOthers) {
  std::string trace;
  fiberloop::run([&] {
    auto other = spawn([&] {
      for (int i = 0; i < 3; ++i) {
        trace += "o";
        this_fiber::yield();
      }
    });
    Ints g([&](Ints::Context& co) {
      for (int i = 0; i < 3; ++i) {
        this_fiber::yield();  // parks the consuming fiber; `other` runs
        co.yield(i);
      }
    });
    for (int v : g) trace += std::to_string(v);
    other.join();
  });
  EXPECT_EQ(trace, "o0o1o2");
}

// A generator that outlives its loop with a with_timeout open in its body:
// destroying it unwinds the body, whose scope must not touch the loop's
// timers (gone). Before the fix it removed its timer from the freed heap
// (AddressSanitizer: heap-use-after-free).
TEST(GeneratorTest, AGeneratorOutlivingItsLoopWithATimeoutOpenUnwindsSafely) {
  std::optional<Ints> g;
  g.emplace([](Ints::Context& co) {
    with_timeout(std::chrono::hours(1), [&] {
      co.yield(1);
      co.yield(2);
    });
  });
  {
    Loop loop;
    EXPECT_EQ(loop.run_until_complete([&] { return *g->next(); }), 1);
  }
  g.reset();  // unwinds the body outside any loop
}

// The same with a new loop on the thread, likely at the old one's address:
// the scope must not take that loop's timers for its own (it removed an
// entry of the new loop's heap, whose sleeper then never woke).
TEST(GeneratorTest, AGeneratorOutlivingItsLoopLeavesTheNextLoopsTimersAlone) {
  std::optional<Ints> g;
  g.emplace([](Ints::Context& co) { with_timeout(std::chrono::hours(1), [&] { co.yield(1); }); });
  {
    Loop loop;
    EXPECT_EQ(loop.run_until_complete([&] { return *g->next(); }), 1);
  }
  Loop next;
  auto sleeper = next.spawn([] {
    this_fiber::sleep_for(std::chrono::milliseconds(1));
    return 7;
  });
  next.call_soon([&g] { g.reset(); });  // while the sleeper's timer is queued
  next.run();
  EXPECT_TRUE(sleeper.done());
  EXPECT_EQ(sleeper.join(), 7);
}

// A body's with_timeout() scopes that end while the body runs outside any
// fiber (resumed from a loop callback): the generator's kept chain must not
// keep them (the next resume from a fiber wrote into the ended scopes, by
// then the body's live frames).
TEST(GeneratorTest, ScopesEndingOutsideAnyFiberLeaveTheBodysChain) {
  std::string trace;
  fiberloop::run([&] {
    Ints g([&](Ints::Context& co) {
      try {
        with_timeout(std::chrono::milliseconds(30), [&] {
          with_timeout(std::chrono::hours(1), [&] { co.yield(1); });
          co.yield(2);  // the inner scope ended outside any fiber
          co.yield(3);  // and, from a fiber, the outer one goes on
          this_fiber::sleep_for(std::chrono::hours(1));
        });
      } catch (const TimeoutError& e) {
        trace += e.what();
      }
      co.yield(4);
    });
    EXPECT_EQ(g.next(), 1);  // opens both scopes in this fiber
    Event called;
    Loop::current()->call_soon([&] {
      EXPECT_EQ(g.next(), 2);
      called.set();
    });
    called.wait();
    EXPECT_EQ(g.next(), 3);
    EXPECT_EQ(g.next(), 4);
  });
  EXPECT_NE(trace.find("with_timeout: 30 ms elapsed"), std::string::npos) << trace;
}

TEST(GeneratorTest, CancellingTheConsumerUnwindsAParkedBody) {
  bool unwound = false;
  fiberloop::run([&] {
    auto consumer = spawn([&] {
      Ints g([&](Ints::Context& co) {
        struct Flag {
          bool& f;
          ~Flag() { f = true; }
        } flag{unwound};
        for (;;) {
          this_fiber::yield();
          co.yield(0);
        }
      });
      for (int v : g) (void)v;
    });
    this_fiber::yield();
    consumer.cancel();
    EXPECT_THROW(consumer.join(), Cancelled);
  });
  EXPECT_TRUE(unwound);
}

}  // namespace
}  // namespace fiberloop
