// The clock a loop looks at its timers with. At every iteration boundary
// the switch path asks whether the earliest timer is due; with a timer
// pending (a with_timeout around a yield) an exact clock read there costs
// about 30 ns on a VM, as much as the rest of the timeout. The CPU's cycle
// counter costs a third of that and bounds the time passed since the last
// exact read from above, so while the earliest deadline is certainly ahead
// no exact read is needed. The same bound gives deadlines measured from now
// (with_timeout, sleep_for, call_later, wait_for) a "now" that is never
// behind the clock and at most 20 us ahead of it, without the exact read.
//
// Sound by construction: due() only answers true from an exact read, so no
// timer fires early. The calibration brackets its samples so that its rate
// can only come out slow, whatever stalls the thread between the reads; a
// timer can then only fire late, or now_at_least() fall behind the clock, if
// the counter ticked at less than half that rate. The kernel rules that out
// when it uses the counter as its own clocksource ("tsc": invariant,
// synchronised across CPUs), which is checked once per process; with any
// other clocksource, or on other CPUs, every look is an exact read, as
// before. (A kernel that later finds its tsc unstable switches clocksource;
// this process keeps the counter until it ends.) A calibration across a
// suspension of the machine, when the clock stops and the counter may not,
// would make the rate too fast: one is detected (CLOCK_BOOTTIME moved
// against the clock) and calibration starts again. After calibration a
// suspension only makes the counter run ahead (the bound is then larger:
// an exact read) or start again from 0 (behind the base: an exact read).
#pragma once

#include <cstdint>
#include <limits>
#include <ratio>
#include <type_traits>

#include "loop/internal/deadline.h"
#include "loop/options.h"

namespace fiberloop::internal {

class TimerClock {
 public:
  // `use_counter`: whether to calibrate the cycle counter and bound with it
  // (tests pass false to see every look read the exact clock).
  explicit TimerClock(bool use_counter = counter_usable()) noexcept : enabled_(use_counter) {}

  // Ticks of the cycle counter (0 where there is none).
  static std::uint64_t cycles() noexcept {
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#else
    return 0;
#endif
  }

  // Whether this process may bound time with the cycle counter: an x86-64
  // CPU whose kernel clocksource is "tsc". Read once per process.
  static bool counter_usable() noexcept;

  // The exact time, read now; also the new base for later bounds.
  TimePoint now() noexcept { return enabled_ ? exact(cycles()) : Clock::now(); }

  // A time no earlier than now and at most kAheadAtMost later, for a
  // deadline measured from now (with_timeout, sleep_for, call_later, the
  // wait_for of every primitive): such a deadline never comes early and at
  // most 20 us late. From the cycle counter while the bound allows, else an
  // exact read. Never before a time it returned earlier, so that deadlines
  // of one duration keep the order they were taken in.
  TimePoint now_at_least() noexcept { return enabled_ ? now_at_least(cycles()) : Clock::now(); }
  // The same, for counter reading `c` taken just now.
  TimePoint now_at_least(std::uint64_t c) noexcept {
    const double passed = passed_at_most(c);
    TimePoint t = passed < kAheadAtMost
                      ? base_time_ + Duration(static_cast<Duration::rep>(passed) + 1)
                      : exact(c);
    if (t <= last_given_) t = last_given_ + Duration(1);
    last_given_ = t;
    return t;
  }

  // Whether `deadline` has passed. Reads the exact clock only when the
  // cycle counter cannot show that it is still ahead.
  bool due(TimePoint deadline) noexcept {
    if (!enabled_) return deadline <= Clock::now();
    const std::uint64_t c = cycles();
    if (certainly_ahead(deadline, c)) return false;
    return due_exactly(deadline, c);
  }

  // The bound itself, for a counter reading `c`: whether `deadline` is
  // after the last exact time plus twice the time `c - base` cycles take
  // at the calibrated rate. False until calibrated, and for a counter that
  // went backwards (another CPU's, after a migration).
  bool certainly_ahead(TimePoint deadline, std::uint64_t c) const noexcept {
    return passed_at_most(c) < static_cast<double>(time_until(deadline, base_time_).count());
  }

  // Takes the exact time `t` as the new base. `before` and `after` are
  // counter readings taken just before and just after `t`: the base and a
  // calibration's end use `before`, a calibration's start `after`, so that
  // the time per cycle is never underestimated. `asleep` is how long the
  // machine had been suspended since boot at `t` (read while calibrating
  // only). Calibrates from two bases at least kCalibration apart with no
  // suspension between them (the clock stops while the machine sleeps,
  // where the counter may go on: a rate taken across it would count each
  // cycle as too short, and timers would be early), at a rate a counter can
  // have; otherwise starts again from `t`.
  void rebase(TimePoint t, std::uint64_t before, std::uint64_t after,
              Duration asleep = Duration::zero()) noexcept {
    base_time_ = t;
    base_cycles_ = before;
    if (ns_per_cycle_bound_ != 0.0 || !enabled_) return;
    const Duration span = t - calibration_time_;
    if (calibration_started_ && span < kCalibration) return;  // not yet
    const Duration slept = asleep - calibration_asleep_;
    if (calibration_started_ && slept < kSleptAtMost && slept > -kSleptAtMost &&
        before > calibration_cycles_) {
      const double ns_per_cycle =
          static_cast<double>(span.count()) / static_cast<double>(before - calibration_cycles_);
      if (ns_per_cycle >= kNsPerCycleAtLeast && ns_per_cycle <= kNsPerCycleAtMost) {
        ns_per_cycle_bound_ = kMargin * ns_per_cycle;
        return;
      }
    }
    calibration_started_ = true;  // (again) from here
    calibration_time_ = t;
    calibration_cycles_ = after;
    calibration_asleep_ = asleep;
  }

  // Whether the bound is in use (calibrated), for tests.
  bool calibrated() const noexcept { return ns_per_cycle_bound_ != 0.0; }

 private:
  static_assert(std::is_same_v<Duration::period, std::nano>, "the bound counts nanoseconds");
  static constexpr Duration kCalibration = std::chrono::milliseconds(10);
  // More than this between the two clocks' offsets is a suspension (less
  // is two reads a moment apart).
  static constexpr Duration kSleptAtMost = std::chrono::milliseconds(1);
  // The rates a cycle counter may have: 100 MHz to 20 GHz.
  static constexpr double kNsPerCycleAtLeast = 0.05;
  static constexpr double kNsPerCycleAtMost = 10.0;
  // The bound counts each cycle as this many times its calibrated length: a
  // counter may tick up to that much slower before a timer could be late.
  static constexpr double kMargin = 2.0;
  // How far now_at_least()'s bound may run ahead of the exact clock, in ns:
  // well under the kernel's default timer slack for a sleeping thread (50 us).
  static constexpr double kAheadAtMost = 20'000.0;

  // The most ns that can have passed since the base, at counter reading `c`;
  // infinity when the counter cannot tell (not calibrated, or it went
  // backwards: another CPU's, after a migration).
  double passed_at_most(std::uint64_t c) const noexcept {
    if (ns_per_cycle_bound_ == 0.0 || c < base_cycles_) return kUnknown;
    return static_cast<double>(c - base_cycles_) * ns_per_cycle_bound_;
  }
  static constexpr double kUnknown = std::numeric_limits<double>::infinity();

  // due()'s exact read, out of line: the switch path keeps only the bound.
  [[gnu::noinline]] bool due_exactly(TimePoint deadline, std::uint64_t before) noexcept {
    return deadline <= exact(before);
  }

  // Reads the exact clock after counter reading `before` (and, while
  // calibrating, the counter again after it and how long the machine slept).
  TimePoint exact(std::uint64_t before) noexcept {
    const TimePoint t = Clock::now();
    if (calibrated() || !enabled_) {
      rebase(t, before, before);
    } else {
      const std::uint64_t after = cycles();
      rebase(t, before, after, asleep_at(t));
    }
    return t;
  }
  // How long the machine had been suspended since boot, at `t` (read just
  // now): CLOCK_BOOTTIME counts suspensions, steady_clock (CLOCK_MONOTONIC)
  // does not.
  static Duration asleep_at(TimePoint t) noexcept;

  bool enabled_;
  TimePoint base_time_{};
  std::uint64_t base_cycles_ = 0;
  bool calibration_started_ = false;
  TimePoint calibration_time_{};
  std::uint64_t calibration_cycles_ = 0;
  Duration calibration_asleep_{};
  double ns_per_cycle_bound_ = 0.0;  // 0: not calibrated, every look is exact
  TimePoint last_given_{};           // what now_at_least() returned last
};

}  // namespace fiberloop::internal
