// Timeouts: with_timeout around sleeps, joins and yields, nested scopes,
// and the durations TimeoutError and the dump print. Bounds on waits are
// generous and one-sided.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ratio>
#include <stdexcept>
#include <string>

#include "loop/internal/format.h"
#include "loop/internal/scheduler.h"
#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;
using Time = LoopTest;

Duration elapsed_since(TimePoint start) { return Clock::now() - start; }

// ---- durations in any unit ------------------------------------------------------

// A duration too long for nanoseconds saturates instead of overflowing
// (std::chrono::hours::max() converted plainly is -1 h); a floating-point
// one is taken too.
TEST(Durations, ToDurationSaturatesAndTakesFloatingPoint) {
  using std::chrono::duration;
  static_assert(to_duration(std::chrono::hours::max()) == Duration::max());
  static_assert(to_duration(std::chrono::seconds::max()) == Duration::max());
  static_assert(to_duration(std::chrono::milliseconds::min()) == Duration::min());
  static_assert(to_duration(std::chrono::hours(1)) == std::chrono::seconds(3600));
  static_assert(to_duration(std::chrono::microseconds(-7)) == std::chrono::nanoseconds(-7000));
  static_assert(to_duration(std::chrono::duration<long long, std::pico>(2500)) ==
                std::chrono::nanoseconds(2));
  static_assert(to_duration(duration<int, std::milli>(5)) == 5ms);
  static_assert(to_duration(duration<std::uint64_t, std::nano>(~std::uint64_t{0})) ==
                Duration::max());
  static_assert(to_duration(duration<long long, std::ratio<1, 3>>(3)) == 1s);
  EXPECT_EQ(to_duration(duration<double>(0.25)), 250ms);
  EXPECT_EQ(to_duration(duration<double>(0.3)), 300ms);  // (0.3 is 0.29999... in binary)
  EXPECT_EQ(to_duration(duration<double>(-0.3)), -300ms);
  // A period not in lowest terms is a duration all the same; a count
  // std::cmp_less cannot take (char) keeps the plain conversion.
  using Tenths = duration<long long, std::ratio<100, 1000>>;
  static_assert(OtherDuration<Tenths>);
  static_assert(to_duration(Tenths::max()) == Duration::max());
  static_assert(!OtherDuration<duration<char, std::milli>>);
  static_assert(!OtherDuration<Duration>);
  EXPECT_EQ(to_duration(duration<double>(1e300)), Duration::max());
  EXPECT_EQ(to_duration(duration<double>(-1e300)), Duration::min());
  EXPECT_THROW(to_duration(duration<double>(std::nan(""))), std::invalid_argument);
}

// A TimeoutError names its duration in the unit that reads best, also just
// below a unit's boundary ("%.3g" printed 999.7 ms as "1e+03 ms").
TEST(Durations, DurationsInMessagesReadWellAtEveryBoundary) {
  using std::chrono::microseconds;
  using std::chrono::nanoseconds;
  EXPECT_EQ(internal::format_duration(nanoseconds(999'700)), "1 ms");
  EXPECT_EQ(internal::format_duration(microseconds(999'700)), "1 s");
  EXPECT_EQ(internal::format_duration(microseconds(250)), "250 us");
  EXPECT_EQ(internal::format_duration(250ms), "250 ms");
  EXPECT_EQ(internal::format_duration(90s), "90 s");
  EXPECT_EQ(internal::format_duration(Duration::max()), "forever");
}

// ---- with_timeout ------------------------------------------------------------

TEST_F(Time, WithTimeoutAroundASleep) {
  run([] {
    const TimePoint start = Clock::now();
    try {
      with_timeout(50ms, [] { this_fiber::sleep_for(10s); });
      ADD_FAILURE() << "no timeout";
    } catch (const TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("50 ms"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("timeout_test.cc"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(") while sleeping, "), std::string::npos) << e.what();
    }
    EXPECT_GE(elapsed_since(start), 50ms);
    EXPECT_LT(elapsed_since(start), 2s);
  });
  EXPECT_EQ(loop().stats().timers_pending, 0u) << "the 10 s sleep left a timer behind";
}

TEST_F(Time, WithTimeoutThatDoesNotFireReturnsTheValueAndLeavesNoTimer) {
  int v = run([] { return with_timeout(1s, [] { return 7; }); });
  EXPECT_EQ(v, 7);
  EXPECT_EQ(loop().stats().timers_pending, 0u);
}

TEST_F(Time, WithTimeoutAroundAJoin) {
  run([] {
    auto slow = spawn([] {
      this_fiber::sleep_for(10s);
      return 1;
    });
    EXPECT_THROW(with_timeout(20ms, [&] { return slow.join(); }), TimeoutError);
    EXPECT_FALSE(slow.done());  // the timeout is the joiner's, not the target's
    slow.cancel();
    EXPECT_THROW(slow.join(), Cancelled);
  });
}

TEST_F(Time, NestedTimeoutsTheEarliestWinsAndIsNamed) {
  run([] {
    try {  // the inner one is earlier
      with_timeout(5s, [] { with_timeout(20ms, [] { this_fiber::sleep_for(10s); }); });
      ADD_FAILURE() << "no timeout";
    } catch (const TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("20 ms"), std::string::npos) << e.what();
    }
    try {  // the outer one is earlier: it is the one reported
      with_timeout(20ms, [] { with_timeout(5s, [] { this_fiber::sleep_for(10s); }); });
      ADD_FAILURE() << "no timeout";
    } catch (const TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("20 ms"), std::string::npos) << e.what();
    }
  });
  EXPECT_EQ(loop().stats().timers_pending, 0u);
}

TEST_F(Time, AnExpiredScopeKeepsInterruptingUntilLeft) {
  run([] {
    int timeouts = 0;
    with_timeout(10ms, [&] {
      for (int i = 0; i < 3; ++i) {
        try {
          this_fiber::sleep_for(10s);
        } catch (const TimeoutError&) {
          ++timeouts;
        }
      }
    });
    EXPECT_EQ(timeouts, 3);
    this_fiber::sleep_for(1ms);  // outside the scope: no error
  });
}

// A fiber alone yields without the run loop between its steps: the switch
// path looks at the timers itself. Where the cycle counter bounds time
// (loop/internal/timer_clock.h) the loop calibrates it within its first
// round, so the second runs with the bound. Never early, and not 2 s late.
TEST_F(Time, TimeoutInterruptsAYieldingLoop) {
  run([] {
    for (int round = 0; round < 2; ++round) {
      long spins = 0;
      const TimePoint start = Clock::now();
      EXPECT_THROW(with_timeout(20ms,
                                [&] {
                                  for (;;) {
                                    ++spins;
                                    this_fiber::yield();
                                  }
                                }),
                   TimeoutError);
      const Duration took = elapsed_since(start);
      EXPECT_GE(took, 20ms) << "round " << round;
      EXPECT_LT(took, 20ms + 2s) << "round " << round;
      EXPECT_GT(spins, 0);
      if (internal::TimerClock::counter_usable()) {
        EXPECT_TRUE(internal::Scheduler::current()->clock().calibrated()) << "round " << round;
      }
    }
  });
}

}  // namespace
}  // namespace fiberloop
