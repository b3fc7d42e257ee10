// Deadlines saturate: every duration and time point the API takes may be
// anything its type holds. Duration::max() and TimePoint::max() mean never;
// anything in the past (Duration::min(), TimePoint::min()) means now. Each API
// is tried with both extremes next to a bystander fiber whose 50 ms sleep
// must end on time. Regression tests for issue 11, class 2: before the fix
// `now + d` and `deadline - now` overflowed, and sleep_for(Duration::max())
// froze the whole loop in epoll with a wrapped timeout.
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "loop/internal/deadline.h"
#include "tests/loop_fixture.h"
#include "tests/thread_probe.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;

constexpr Duration kBystanderSleep = 50ms;

// Stops `loop` from another thread if the test is still running after a
// generous bound, so a frozen loop fails the test instead of hanging it.
class StopIfStuck {
 public:
  explicit StopIfStuck(Loop& loop) : loop_(loop) {
    thread_ = std::thread([this] {
      std::unique_lock lock(mutex_);
      if (!done_cv_.wait_for(lock, 10s, [this] { return done_; })) {
        stopped_ = true;
        loop_.stop();
      }
    });
  }
  ~StopIfStuck() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    done_cv_.notify_one();
    thread_.join();
  }
  bool stopped() const { return stopped_; }

 private:
  Loop& loop_;
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  bool stopped_ = false;
  std::thread thread_;
};

class Deadline : public LoopTest {
 protected:
  // Runs `fn` in a fiber while a bystander fiber sleeps 50 ms; fails if the
  // bystander's sleep does not end within seconds. Returns what `fn` returned.
  template <class F>
  auto with_bystander(F&& fn) {
    StopIfStuck guard(loop());
    auto result = run([&] {
      bool bystander_woke = false;
      auto bystander = spawn([&] {
        this_fiber::sleep_for(kBystanderSleep);
        bystander_woke = true;
      });
      auto r = fn();
      bystander.join();
      EXPECT_TRUE(bystander_woke);
      return r;
    });
    EXPECT_FALSE(guard.stopped()) << "the loop froze";
    return result;
  }
};

// A fiber that waits with `wait` (which must not return by itself) stays
// parked while the bystander sleeps; then it is cancelled.
template <class Wait>
std::string waits_forever(Wait wait) {
  auto waiter = spawn([wait] { wait(); });
  this_fiber::sleep_for(2 * kBystanderSleep);
  if (waiter.done()) return "returned early";
  waiter.cancel();
  try {
    waiter.join();
  } catch (const Cancelled&) {
    return "parked until cancelled";
  }
  return "not cancelled";
}

constexpr const char* kForever = "parked until cancelled";

TEST_F(Deadline, SleepForMaxNeverWakesAndTheLoopGoesOn) {
  EXPECT_EQ(
      with_bystander([] { return waits_forever([] { this_fiber::sleep_for(Duration::max()); }); }),
      kForever);
}

TEST_F(Deadline, SleepUntilMaxNeverWakes) {
  EXPECT_EQ(with_bystander(
                [] { return waits_forever([] { this_fiber::sleep_until(TimePoint::max()); }); }),
            kForever);
}

// Zero is now, and a sleep until now yields: a fiber made ready before it
// runs before it returns. (Every other relative deadline is taken from the
// loop's timer clock, which may run 20 us ahead; zero is the exact now.)
TEST_F(Deadline, SleepForZeroYields) {
  run([] {
    for (const Duration zero : {Duration::zero(), Duration(-1)}) {
      bool ran = false;
      auto other = spawn([&] { ran = true; });
      this_fiber::sleep_for(zero);
      EXPECT_TRUE(ran);
      other.join();
    }
  });
}

TEST_F(Deadline, SleepForMinAndSleepUntilMinReturnAtOnce) {
  const bool before_bystander = with_bystander([] {
    auto probe = spawn([] { this_fiber::sleep_for(kBystanderSleep / 2); });
    this_fiber::sleep_for(Duration::min());
    this_fiber::sleep_until(TimePoint::min());
    this_fiber::sleep_for(-1h);
    const bool early = !probe.done();
    probe.join();
    return early;
  });
  EXPECT_TRUE(before_bystander);
}

TEST_F(Deadline, CallLaterAndCallAtMaxNeverRun) {
  bool ran = false;
  const bool active = with_bystander([&] {
    TimerHandle a = loop().call_later(Duration::max(), [&] { ran = true; });
    TimerHandle b = loop().call_at(TimePoint::max(), [&] { ran = true; });
    this_fiber::sleep_for(2 * kBystanderSleep);
    const bool both_active = a.active() && b.active();
    a.cancel();
    b.cancel();
    return both_active && !a.active() && !b.active();
  });
  EXPECT_TRUE(active);
  EXPECT_FALSE(ran);
}

TEST_F(Deadline, CallLaterAndCallAtMinRunInTheNextIteration) {
  std::string trace;
  with_bystander([&] {
    loop().call_later(Duration::min(), [&] { trace += "later "; });
    loop().call_at(TimePoint::min(), [&] { trace += "at "; });
    this_fiber::yield();
    this_fiber::yield();
    trace += "yielded";
    return 0;
  });
  // Both are due at once; TimePoint::min() is the earlier deadline, and due
  // callbacks run in deadline order (as asyncio's).
  EXPECT_EQ(trace, "at later yielded");
}

TEST_F(Deadline, WithTimeoutMaxNeverTimesOut) {
  const std::string outcome = with_bystander([] {
    return with_timeout(Duration::max(), [] {
      this_fiber::sleep_for(2 * kBystanderSleep);
      return std::string("finished");
    });
  });
  EXPECT_EQ(outcome, "finished");
}

TEST_F(Deadline, WithTimeoutMinTimesOutAtTheFirstSuspension) {
  const std::string outcome = with_bystander([] {
    try {
      with_timeout(Duration::min(), [] { this_fiber::sleep_for(1h); });
      return std::string("returned");
    } catch (const TimeoutError& e) {
      return std::string(e.what()).substr(0, 28);
    }
  });
  EXPECT_EQ(outcome, "with_timeout: 0 ms elapsed (");
}

TEST_F(Deadline, EventWaitForBothExtremes) {
  const std::string outcome = with_bystander([] {
    Event e;
    std::string s = e.wait_for(Duration::min()) ? "set " : "timed out ";
    s += e.wait_for(-1h) ? "set " : "timed out ";
    auto setter = spawn([&] {
      this_fiber::sleep_for(2 * kBystanderSleep);
      e.set();
    });
    s += e.wait_for(Duration::max()) ? "set" : "timed out";
    setter.join();
    return s;
  });
  EXPECT_EQ(outcome, "timed out timed out set");
}

TEST_F(Deadline, ConditionVariableWaitForBothExtremes) {
  const std::string outcome = with_bystander([] {
    Mutex m;
    ConditionVariable cv;
    bool ready = false;
    std::unique_lock lock(m);
    std::string s = cv.wait_for(lock, Duration::min()) ? "notified " : "timed out ";
    s += cv.wait_for(lock, Duration::min(), [&] { return ready; }) ? "ready " : "not ready ";
    auto notifier = spawn([&] {
      this_fiber::sleep_for(2 * kBystanderSleep);
      std::lock_guard g(m);
      ready = true;
      cv.notify_all();
    });
    s += cv.wait_for(lock, Duration::max(), [&] { return ready; }) ? "ready" : "not ready";
    lock.unlock();
    notifier.join();
    return s;
  });
  EXPECT_EQ(outcome, "timed out not ready ready");
}

TEST_F(Deadline, SelectForBothExtremes) {
  const std::string outcome = with_bystander([] {
    Channel<int> ch;
    std::optional<int> got;
    std::string s = select_for(Duration::min(), ch.recv_case(got)) ? "got " : "timed out ";
    auto sender = spawn([&] {
      this_fiber::sleep_for(2 * kBystanderSleep);
      ch.send(3);
    });
    s += select_for(Duration::max(), ch.recv_case(got)) ? "got " + std::to_string(*got)
                                                        : "timed out";
    sender.join();
    return s;
  });
  EXPECT_EQ(outcome, "timed out got 3");
}

TEST(DeadlineStall, AStallThresholdOfMaxIsQuietAndIdle) {
  // The watchdog thread waits a quarter of the threshold at a time: with
  // Duration::max() that wait overflowed and the watchdog spun.
  LoopOptions options;
  options.stall_threshold = Duration::max();
  Loop loop(options);
  const pid_t watchdog = testing::thread_named("fl-stall-watch");
  ASSERT_NE(watchdog, 0) << "no thread named fl-stall-watch";
  const long ticks_before = testing::cpu_ticks(watchdog);
  loop.run_until_complete([] { this_fiber::sleep_for(300ms); });
  const long ticks = testing::cpu_ticks(watchdog) - ticks_before;
  // At 100 ticks per second: a busy spin takes about 30 in 300 ms, a loop of
  // waits that return at once (a deadline already past) 3 or 4; waiting as
  // it should, it takes none.
  EXPECT_LE(ticks, 2) << "the watchdog used CPU while it waited";
}

// The conversions every wait goes through, at their edges.
TEST(DeadlineArithmetic, SaturatesAtBothEnds) {
  const TimePoint now = Clock::now();
  EXPECT_EQ(internal::deadline_after(Duration::max(), now), TimePoint::max());
  EXPECT_EQ(internal::deadline_after(Duration::min(), now), now);
  EXPECT_EQ(internal::deadline_after(-1s, now), now);
  EXPECT_EQ(internal::deadline_after(5s, now), now + 5s);
  EXPECT_EQ(internal::time_until(TimePoint::max(), now), Duration::max());
  EXPECT_EQ(internal::time_until(TimePoint::min(), now), Duration::zero());
  EXPECT_EQ(internal::time_until(now + 3s, now), 3s);
  EXPECT_EQ(internal::time_until(now - 3s, now), Duration::zero());
  // The millisecond timeout of epoll_wait (kernels without epoll_pwait2):
  // rounded up, and capped instead of wrapping past 24.8 days.
  EXPECT_EQ(internal::poll_timeout_ms(Duration::zero()), 0);
  EXPECT_EQ(internal::poll_timeout_ms(1ns), 1);
  EXPECT_EQ(internal::poll_timeout_ms(1ms), 1);
  EXPECT_EQ(internal::poll_timeout_ms(1001us), 2);
  EXPECT_GT(internal::poll_timeout_ms(std::chrono::hours(24 * 30)), 0);
  EXPECT_GT(internal::poll_timeout_ms(Duration::max()), 0);
}

}  // namespace
}  // namespace fiberloop
