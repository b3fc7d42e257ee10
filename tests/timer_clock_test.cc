// TimerClock: the cycle-counter bound that spares the switch path an exact
// clock read never says a deadline has passed before it has, and says so
// once it has. The bound's arithmetic on given readings; then the real clock.
#include <gtest/gtest.h>
#include <sched.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>

#include "loop/internal/timer_clock.h"

namespace fiberloop::internal {
namespace {

using namespace std::chrono_literals;

// A second before the test began: an exact read is always far past kBase
// plus any bound below, so the tests can tell the two apart.
const TimePoint kBase = Clock::now() - 1s;

// The real-clock tests use the counter wherever the CPU says it is invariant
// (it ticks at one rate, in every power state), not only where the kernel
// chose it as clocksource: on a kvm-clock host they still test the bound.
bool invariant_counter() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) == 0) {
      return line.find(" constant_tsc") != std::string::npos &&
             line.find(" nonstop_tsc") != std::string::npos;
    }
  }
  return false;
}

// Keeps the calling thread on the CPU it runs on, while it lives: where the
// kernel did not choose the counter as its clocksource, CPUs' counters may
// disagree, and a migration between two readings would fail a real-clock
// test for what the library never relies on there.
class PinnedHere {
 public:
  PinnedHere() {
    ::sched_getaffinity(0, sizeof before_, &before_);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(::sched_getcpu(), &one);
    ::sched_setaffinity(0, sizeof one, &one);
  }
  ~PinnedHere() { ::sched_setaffinity(0, sizeof before_, &before_); }

 private:
  cpu_set_t before_{};
};

// Takes `t` as the base with one counter reading on both sides of it.
void rebase(TimerClock& clock, TimePoint t, std::uint64_t cycles) {
  clock.rebase(t, cycles, cycles);
}

// A clock calibrated at exactly one cycle per nanosecond, based at kBase
// with the counter at `cycles`.
TimerClock calibrated_at(std::uint64_t cycles) {
  TimerClock clock(true);
  rebase(clock, kBase - 10ms, cycles - 10'000'000);
  rebase(clock, kBase, cycles);
  return clock;
}

TEST(TimerClock, BoundsNothingUntilCalibrated) {
  TimerClock clock(true);
  rebase(clock, kBase, 1000);
  EXPECT_FALSE(clock.calibrated());
  EXPECT_FALSE(clock.certainly_ahead(kBase + 1h, 1001));
  rebase(clock, kBase + 9ms, 1000 + 9'000'000);  // under 10 ms: still not
  EXPECT_FALSE(clock.calibrated());
  rebase(clock, kBase + 10ms, 1000 + 10'000'000);
  EXPECT_TRUE(clock.calibrated());
}

// The clock stops while the machine is suspended; the counter may go on. A
// calibration across a suspension would count each cycle as too short
// (timers early): one that saw the machine sleep starts again.
TEST(TimerClock, ASuspensionWhileCalibratingStartsAgain) {
  TimerClock clock(true);
  clock.rebase(kBase, 0, 0, 3s);
  // 10 ms of clock and 20M cycles (a plausible 0.5 ns per cycle), but the
  // machine slept 10 ms in between: really 1 ns per cycle.
  clock.rebase(kBase + 10ms, 20'000'000, 20'000'000, 3s + 10ms);
  EXPECT_FALSE(clock.calibrated());
  clock.rebase(kBase + 20ms, 30'000'000, 30'000'000, 3s + 10ms);  // awake since
  ASSERT_TRUE(clock.calibrated());
  EXPECT_FALSE(clock.certainly_ahead(kBase + 20ms + 200ns, 30'000'100));
  EXPECT_TRUE(clock.certainly_ahead(kBase + 20ms + 201ns, 30'000'100));
}

// A loop that looks at the clock seldom still calibrates: a span of any
// length without a suspension will do.
TEST(TimerClock, ALongSpanCalibrates) {
  TimerClock clock(true);
  clock.rebase(kBase, 0, 0);
  clock.rebase(kBase + 5s, 5'000'000'000, 5'000'000'000);
  EXPECT_TRUE(clock.calibrated());
}

// A rate no cycle counter has (a suspension within the span; a sample
// whose thread stalled) starts the calibration again.
TEST(TimerClock, AnImplausibleRateStartsAgain) {
  TimerClock fast(true);
  rebase(fast, kBase, 0);
  rebase(fast, kBase + 50ms, 50'000'000'000);  // 1000 cycles per ns
  EXPECT_FALSE(fast.calibrated());
  rebase(fast, kBase + 60ms, 50'010'000'000);
  EXPECT_TRUE(fast.calibrated());
  TimerClock slow(true);
  rebase(slow, kBase, 0);
  rebase(slow, kBase + 10ms, 100);  // 100 us per cycle
  EXPECT_FALSE(slow.calibrated());
}

TEST(TimerClock, CountsEachCycleTwiceOver) {
  const TimerClock clock = calibrated_at(5'000'000'000);
  // 100 cycles are 100 ns at the calibrated rate, bounded as 200 ns.
  EXPECT_TRUE(clock.certainly_ahead(kBase + 201ns, 5'000'000'100));
  EXPECT_FALSE(clock.certainly_ahead(kBase + 200ns, 5'000'000'100));
  EXPECT_FALSE(clock.certainly_ahead(kBase + 150ns, 5'000'000'100));
  EXPECT_TRUE(clock.certainly_ahead(kBase + 1s, 5'000'000'100));
  // A deadline at or before the base is never ahead.
  EXPECT_FALSE(clock.certainly_ahead(kBase, 5'000'000'000));
  EXPECT_FALSE(clock.certainly_ahead(kBase - 1ms, 5'000'000'000));
}

// A deadline's "now" from the counter: the last exact time plus the bound,
// rounded up; from 20 us of bound on, an exact read.
TEST(TimerClock, NowAtLeastIsTheBaseAndTheBoundUnder20Us) {
  TimerClock clock = calibrated_at(5'000'000'000);
  EXPECT_EQ(clock.now_at_least(5'000'000'000), kBase + 1ns);
  EXPECT_EQ(clock.now_at_least(5'000'000'100), kBase + 201ns);
  EXPECT_EQ(clock.now_at_least(5'000'009'999), kBase + 19'999ns);
  const TimePoint before = Clock::now();
  EXPECT_GE(clock.now_at_least(5'000'010'000), before);  // exact: 20 us of bound
  TimerClock uncalibrated(true);
  EXPECT_GE(uncalibrated.now_at_least(1000), before);
}

// An exact read in between may put the base below what now_at_least() gave
// (it runs up to 20 us ahead): it still never goes back, so deadlines of one
// duration keep the order they were taken in.
TEST(TimerClock, NowAtLeastNeverGoesBack) {
  TimerClock clock = calibrated_at(5'000'000'000);
  EXPECT_EQ(clock.now_at_least(5'000'001'000), kBase + 2001ns);
  rebase(clock, kBase + 500ns, 5'000'000'500);  // the exact clock: 500 ns past kBase
  EXPECT_EQ(clock.now_at_least(5'000'000'600), kBase + 2002ns);  // the bound says 701 ns
  EXPECT_EQ(clock.now_at_least(5'000'002'000), kBase + 3501ns);  // the bound is ahead again
}

TEST(TimerClock, ACounterThatWentBackwardsBoundsNothing) {
  const TimerClock clock = calibrated_at(5'000'000'000);
  EXPECT_FALSE(clock.certainly_ahead(kBase + 1h, 4'999'999'999));
}

// The counter ticks once per nanosecond from time 0. The thread stalls for
// 30 ms between reading the counter and reading the clock at the first
// sample: calibrating from the reading before the clock would see 10 ms take
// 40M cycles and count each cycle as 0.5 ns (timers 2x late); the reading
// after it makes a stall only slow the rate down.
TEST(TimerClock, AStallWhileCalibratingOnlySlowsTheRate) {
  TimerClock clock(true);
  const TimePoint zero = kBase;
  clock.rebase(zero + 30ms, 0, 30'000'000);
  clock.rebase(zero + 40ms, 40'000'000, 40'000'000);
  ASSERT_TRUE(clock.calibrated());
  // 100 cycles later, 100 ns have passed: 150 ns ahead is not certain.
  EXPECT_FALSE(clock.certainly_ahead(zero + 40ms + 150ns, 40'000'100));
  EXPECT_TRUE(clock.certainly_ahead(zero + 40ms + 201ns, 40'000'100));
  // A stall between the counter and the clock at the calibration's end.
  TimerClock late_end(true);
  late_end.rebase(zero, 0, 0);
  late_end.rebase(zero + 40ms, 10'000'000, 10'000'000);  // read at 10 ms, clock at 40 ms
  ASSERT_TRUE(late_end.calibrated());
  // 4 ns per cycle, bounded as 8: 100 cycles may be 800 ns.
  EXPECT_FALSE(late_end.certainly_ahead(zero + 40ms + 500ns, 10'000'100));
  EXPECT_TRUE(late_end.certainly_ahead(zero + 40ms + 801ns, 10'000'100));
}

TEST(TimerClock, ACounterThatStandsStillCannotCalibrate) {
  TimerClock clock(true);
  rebase(clock, kBase, 1000);
  rebase(clock, kBase + 20ms, 1000);
  EXPECT_FALSE(clock.calibrated());
}

TEST(TimerClock, WithoutTheCounterEveryLookIsExact) {
  TimerClock clock(false);
  rebase(clock, kBase, 1000);
  rebase(clock, kBase + 1s, 1000 + 1'000'000'000);
  EXPECT_FALSE(clock.calibrated());
  EXPECT_FALSE(clock.certainly_ahead(kBase + 1h, 1001));
}

// The real clock and counter: due() answers true only once the deadline has
// passed, and soon after, whether it bounded with the counter or read exactly.
TEST(TimerClock, DueNeitherEarlyNorLateOnTheRealClock) {
  const PinnedHere pinned;
  TimerClock clock(TimerClock::counter_usable() || invariant_counter());
  const TimePoint first = clock.now();
  while (clock.now() - first < 11ms) {
  }
  EXPECT_EQ(clock.calibrated(), TimerClock::counter_usable() || invariant_counter());
  for (const Duration ahead : {Duration(0ns), Duration(1us), Duration(50us), Duration(2ms)}) {
    const TimePoint deadline = clock.now() + ahead;
    while (!clock.due(deadline)) {
      ASSERT_LT(Clock::now(), deadline + 1s) << "due() still says no a second after the deadline";
    }
    EXPECT_GE(Clock::now(), deadline) << "due() said yes before the deadline";
    // Once due, it stays due.
    EXPECT_TRUE(clock.due(deadline));
  }
}

// now_at_least() on the real clock: never before the exact time at the call,
// never more than 20 us after it (and the 1 ns steps that keep it moving).
TEST(TimerClock, NowAtLeastNeitherBehindNorFarAheadOnTheRealClock) {
  const PinnedHere pinned;
  TimerClock clock(TimerClock::counter_usable() || invariant_counter());
  const TimePoint first = clock.now();
  while (clock.now() - first < 11ms) {
  }
  for (int i = 0; i < 100'000; ++i) {
    const TimePoint before = Clock::now();
    const TimePoint at_least = clock.now_at_least();
    const TimePoint after = Clock::now();
    ASSERT_GE(at_least, before) << "look " << i;
    ASSERT_LE(at_least, after + 21us) << "look " << i;
  }
}

}  // namespace
}  // namespace fiberloop::internal
