// with_task_group() and with_nursery(): a group's scope as a call, which
// throws a child's failure to the owner where the object form lets the
// Cancelled that failure sent leave the scope (asyncio's `async with
// TaskGroup()`, Trio's nursery).
#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fiberloop.h"
#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using GroupScope = testing::LoopTest;

// A server's shape: the body waits (accept()) when a connection handler
// fails. The failure reaches the owner; the body goes no further.
TEST_F(GroupScope, WithNurseryThrowsTheFailureThatCancelledTheBody) {
  std::vector<std::string> reported;
  loop().set_exception_handler(testing::collect_whats(reported));
  run([&] {
    bool body_went_on = false;
    try {
      with_nursery([&](Nursery& connections) {
        connections.spawn([] { this_fiber::sleep_for(1h); });  // cancelled by the failure
        connections.spawn([] {
          this_fiber::sleep_for(1ms);
          throw std::runtime_error("connection handler failed");
        });
        this_fiber::sleep_for(10s);  // accept() in a server
        body_went_on = true;
      });
      ADD_FAILURE() << "with_nursery returned";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "connection handler failed");
    }
    EXPECT_FALSE(body_went_on);
    EXPECT_NO_THROW(this_fiber::sleep_for(1ms));  // no cancel left pending
  });
  EXPECT_TRUE(reported.empty()) << reported[0];
}

TEST_F(GroupScope, WithTaskGroupReturnsWhatTheBodyReturns) {
  run([] {
    auto [a, b] = with_task_group([](TaskGroup& g) {
      auto& x = g.spawn([] { return 20; });
      auto& y = g.spawn([] {
        this_fiber::sleep_for(1ms);
        return std::string("ok");
      });
      g.join();
      return std::pair(x.join(), y.join());
    });
    EXPECT_EQ(a, 20);
    EXPECT_EQ(b, "ok");
    // The body need not join: the call does.
    int ran = 0;
    with_task_group([&](TaskGroup& g) { g.spawn([&] { ++ran; }); });
    EXPECT_EQ(ran, 1);
  });
}

TEST_F(GroupScope, WithTaskGroupThrowsTheFailureThatCancelledTheBody) {
  std::vector<std::string> reported;
  loop().set_exception_handler(testing::collect_whats(reported));
  run([&] {
    bool sibling_cancelled = false;
    EXPECT_THROW(with_task_group([&](TaskGroup& g) {
                   g.spawn([&] {
                     try {
                       this_fiber::sleep_for(1h);
                     } catch (const Cancelled&) {
                       sibling_cancelled = true;
                       throw;
                     }
                   });
                   g.spawn([]() -> int { throw std::invalid_argument("bad input"); });
                   Event never;
                   never.wait();
                 }),
                 std::invalid_argument);
    EXPECT_TRUE(sibling_cancelled);
    // A body that caught the group's Cancelled and returned: the call's
    // join() rethrows the failure all the same.
    EXPECT_THROW(with_task_group([](TaskGroup& g) {
                   g.spawn([] { throw std::runtime_error("late"); });
                   try {
                     this_fiber::sleep_for(1h);
                   } catch (const Cancelled&) {
                   }
                 }),
                 std::runtime_error);
  });
  EXPECT_TRUE(reported.empty()) << reported[0];
}

// A body that joins the group itself and handles the failure: the call
// does not join again (which rethrew it: helper-74).
TEST_F(GroupScope, ABodyThatJoinsAndHandlesTheFailureReturns) {
  run([] {
    const int got = with_task_group([](TaskGroup& g) {
      g.spawn([] { throw std::runtime_error("handled"); });
      try {
        g.join();
      } catch (const std::runtime_error&) {
        return 0;
      }
      return 1;
    });
    EXPECT_EQ(got, 0);
  });
}

// A join that times out after a failure: the failure is reported, not lost.
TEST_F(GroupScope, AJoinThatTimesOutReportsTheFailure) {
  std::vector<std::string> reported;
  loop().set_exception_handler(testing::collect_whats(reported));
  run([] {
    TaskGroup g;
    g.spawn([] {
      this_fiber::sleep_for(1ms);  // the sibling is asleep by then
      throw std::runtime_error("lost before");
    });
    g.spawn([] {
      try {
        this_fiber::sleep_for(1h);
      } catch (const Cancelled&) {
        this_fiber::sleep_for(1h);  // slow to stop: the owner's join times out
      }
    });
    // Generous: the failure (1 ms in) must come first, also under TSan.
    EXPECT_THROW(with_timeout(200ms, [&] { g.join(); }), TimeoutError);
  });
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_NE(reported[0].find("lost before"), std::string::npos) << reported[0];
}

// What the body throws itself leaves as it came, the children cancelled
// first; a cancel from elsewhere stays a Cancelled.
TEST_F(GroupScope, TheBodysOwnExceptionAndAnOutsideCancelPassThrough) {
  run([] {
    int cancelled = 0;
    auto sleeper = [&] {
      try {
        this_fiber::sleep_for(1h);
      } catch (const Cancelled&) {
        ++cancelled;
        throw;
      }
    };
    EXPECT_THROW(with_nursery([&](Nursery& n) {
                   n.spawn(sleeper);
                   this_fiber::yield();
                   throw std::out_of_range("the body's own");
                 }),
                 std::out_of_range);
    EXPECT_EQ(cancelled, 1);

    auto owner = spawn([&] {
      with_task_group([&](TaskGroup& g) {
        g.spawn(sleeper);
        this_fiber::sleep_for(1h);
      });
    });
    this_fiber::sleep_for(1ms);
    owner.cancel();
    EXPECT_THROW(owner.join(), Cancelled);
    EXPECT_EQ(cancelled, 2);

    EXPECT_THROW(with_timeout(2ms, [&] { with_nursery([&](Nursery& n) { n.spawn(sleeper); }); }),
                 TimeoutError);
    EXPECT_EQ(cancelled, 3);
  });
}

}  // namespace
}  // namespace fiberloop
