// Time: sleeps, callbacks, the idle loop, cross-thread wake-ups. Bounds on
// waits are generous and one-sided (with_timeout has tests/timeout_test.cc,
// run_blocking tests/run_blocking_test.cc).
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "loop/internal/scheduler.h"
#include "tests/loop_fixture.h"
#include "tests/thread_probe.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;
using Time = LoopTest;

Duration elapsed_since(TimePoint start) { return Clock::now() - start; }

double thread_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_THREAD, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Each call taking a Duration takes a coarser unit's max() as "for ever".
// Before the fix each of these ended at once (the conversion overflowed to
// -1 unit, a deadline in the past).
TEST_F(Time, EveryTimedCallTakesACoarseUnitsMaxAsForever) {
  run([] {
    EXPECT_EQ(with_timeout(std::chrono::seconds::max(),
                           [] {
                             this_fiber::yield();
                             return 1;
                           }),
              1);
    auto sleeper = spawn([] { this_fiber::sleep_for(std::chrono::hours::max()); });
    this_fiber::sleep_for(10ms);
    EXPECT_FALSE(sleeper.done());  // still asleep
    sleeper.cancel();
    EXPECT_THROW(sleeper.join(), Cancelled);

    bool called = false;
    TimerHandle later =
        Loop::current()->call_later(std::chrono::minutes::max(), [&] { called = true; });
    this_fiber::sleep_for(10ms);
    EXPECT_FALSE(called);
    later.cancel();

    Event ev;
    auto setter = spawn([&] {
      this_fiber::sleep_for(10ms);
      ev.set();
    });
    EXPECT_TRUE(ev.wait_for(std::chrono::hours::max()));
    setter.join();

    Mutex m;
    ConditionVariable cv;
    bool ready = false;
    auto notifier = spawn([&] {
      this_fiber::sleep_for(10ms);
      std::lock_guard lock(m);
      ready = true;
      cv.notify_one();
    });
    std::unique_lock lock(m);
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::hours::max(), [&] { return ready; }));
    lock.unlock();
    notifier.join();

    Channel<int> ch;
    auto sender = spawn([&] {
      this_fiber::sleep_for(10ms);
      ch.send(5);
    });
    std::optional<int> got;
    EXPECT_EQ(select_for(std::chrono::hours::max(), ch.recv_case(got)),
              std::optional<std::size_t>(0));
    EXPECT_EQ(got, 5);
    sender.join();

    // And a floating-point span, which did not compile before.
    const TimePoint start = Clock::now();
    this_fiber::sleep_for(std::chrono::duration<double, std::milli>(5.5));
    EXPECT_GE(Clock::now() - start, 5500us);
  });
}

TEST_F(Time, SleepersWakeInDeadlineOrderAndOverlap) {
  std::string trace;
  const TimePoint start = Clock::now();
  for (int ms : {300, 100, 200}) {
    loop().spawn([&trace, ms] {
      this_fiber::sleep_for(std::chrono::milliseconds(ms));
      trace += std::to_string(ms) + " ";
    });
  }
  loop().run();
  const Duration took = elapsed_since(start);
  EXPECT_EQ(trace, "100 200 300 ");
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 2s) << "three sleeps of 100/200/300 ms must overlap";
}

TEST_F(Time, SleepNeverEndsEarly) {
  run([] {
    for (int i = 0; i < 20; ++i) {
      const TimePoint start = Clock::now();
      this_fiber::sleep_for(std::chrono::microseconds(1500));
      EXPECT_GE(elapsed_since(start), std::chrono::microseconds(1500));
    }
  });
}

TEST_F(Time, SleepInThePastYieldsAndReturns) {
  std::string trace;
  loop().spawn([&] {
    this_fiber::sleep_until(Clock::now() - 1s);
    trace += "a";
  });
  loop().spawn([&] { trace += "b"; });
  loop().run();
  EXPECT_EQ(trace, "ba");
}

TEST_F(Time, CallbacksRunInOrder) {
  std::string trace;
  loop().call_later(30ms, [&] { trace += "late "; });
  loop().call_soon([&] { trace += "soon1 "; });
  loop().call_at(Clock::now() + 10ms, [&] { trace += "at "; });
  loop().call_soon([&] {
    trace += "soon2 ";
    loop().call_soon([&] { trace += "nested "; });
  });
  loop().run();
  EXPECT_EQ(trace, "soon1 soon2 nested at late ");
}

TEST_F(Time, CallbacksDueAtTheSameTimeRunInScheduleOrder) {
  std::string trace;
  const TimePoint when = Clock::now() + 5ms;
  for (char c : std::string("abcdef")) loop().call_at(when, [&trace, c] { trace += c; });
  loop().run();
  EXPECT_EQ(trace, "abcdef");
}

TEST_F(Time, CancelledCallbacksDoNotRun) {
  std::string trace;
  TimerHandle soon = loop().call_soon([&] { trace += "soon "; });
  TimerHandle later = loop().call_later(10ms, [&] { trace += "later "; });
  TimerHandle kept = loop().call_later(20ms, [&] { trace += "kept "; });
  EXPECT_TRUE(soon.active());
  EXPECT_TRUE(later.active());
  soon.cancel();
  later.cancel();
  later.cancel();  // twice is fine
  EXPECT_FALSE(soon.active());
  EXPECT_FALSE(later.active());
  loop().run();
  EXPECT_EQ(trace, "kept ");
  EXPECT_FALSE(kept.active());  // it ran
  EXPECT_FALSE(TimerHandle().active());
}

TEST_F(Time, ACallbackCanCancelAnother) {
  std::string trace;
  TimerHandle victim = loop().call_later(20ms, [&] { trace += "victim "; });
  loop().call_later(10ms, [&] {
    trace += "killer ";
    victim.cancel();
  });
  loop().run();
  EXPECT_EQ(trace, "killer ");
}

TEST_F(Time, AThrowingCallbackGoesToTheHandlerAndTheLoopGoesOn) {
  std::vector<std::string> reports;
  loop().set_exception_handler(testing::collect_whats(reports, true));
  bool after = false;
  loop().call_soon([] { throw std::runtime_error("callback broke"); });
  loop().call_later(5ms, [&] { after = true; });
  loop().run();
  EXPECT_TRUE(after);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0], "loop callback: callback broke");
}

TEST_F(Time, HandlesOutliveTheirLoop) {
  TimerHandle h;
  std::thread([&] {
    Loop l;
    h = l.call_later(1h, [] {});
  }).join();
  EXPECT_FALSE(h.active());
  h.cancel();  // a no-op, not a use-after-free
}

TEST_F(Time, CallbacksFromTheWrongThreadAreRefused) {
  std::string message;
  std::thread([&] {
    try {
      loop().call_soon([] {});
    } catch (const std::logic_error& e) {
      message = e.what();
    }
  }).join();
  EXPECT_NE(message.find("call_soon_threadsafe"), std::string::npos) << message;
}

TEST_F(Time, IdleLoopUsesNoCpu) {
  run([] {
    const double cpu_before = thread_cpu_seconds();
    const TimePoint start = Clock::now();
    this_fiber::sleep_for(500ms);
    const double wall = std::chrono::duration<double>(elapsed_since(start)).count();
    const double cpu = thread_cpu_seconds() - cpu_before;
    EXPECT_LT(cpu, 0.1 * wall) << "an idle loop burned " << cpu << " s of CPU in " << wall << " s";
  });
  EXPECT_GE(loop().stats().time_blocked, 400ms);
}

TEST_F(Time, ASpinningFiberDoesNotStarveASleeper) {
  Duration late{};
  run([&] {
    bool stop = false;
    auto spinner = spawn([&] {
      while (!stop) this_fiber::yield();
    });
    const TimePoint start = Clock::now();
    this_fiber::sleep_for(50ms);
    late = elapsed_since(start) - 50ms;
    stop = true;
    spinner.join();
  });
  EXPECT_GE(late, 0ns) << "the sleeper woke early";
  EXPECT_LT(late, 500ms);
}

TEST_F(Time, CallSoonThreadsafeWakesABlockedLoop) {
  TimePoint posted, ran_at;
  auto sleeper = loop().spawn([] { this_fiber::sleep_for(10s); });
  const pid_t loop_thread = testing::this_tid();
  std::thread poster([&] {
    testing::await_loop_wait(loop_thread);
    posted = Clock::now();
    loop().call_soon_threadsafe([&] {
      ran_at = Clock::now();
      sleeper.cancel();
    });
  });
  loop().run();  // blocked in epoll for ~10 s, unless the post wakes it
  poster.join();
  EXPECT_LT(ran_at - posted, 1s);
  EXPECT_THROW(sleeper.join(), Cancelled);
}

TEST_F(Time, StopFromAnotherThreadWakesABlockedLoop) {
  loop().spawn([] { this_fiber::sleep_for(10s); });
  const pid_t loop_thread = testing::this_tid();
  std::thread stopper([&] {
    testing::await_loop_wait(loop_thread);
    loop().stop();
  });
  const TimePoint start = Clock::now();
  loop().run();
  stopper.join();
  EXPECT_LT(elapsed_since(start), 5s);
}

TEST_F(Time, HundredThousandSleepersWakeInDeadlineOrder) {
  constexpr int kSleepers = testing::at_scale(100'000);
  std::mt19937 rng(7);
  std::vector<int> woke;
  woke.reserve(kSleepers);
  std::vector<int> delay_us(kSleepers);
  for (int& d : delay_us) d = static_cast<int>(rng() % 200'000);  // up to 200 ms
  const TimePoint start = Clock::now();
  for (int i = 0; i < kSleepers; ++i) {
    loop().spawn([&, i] {
      this_fiber::sleep_until(start + std::chrono::microseconds(delay_us[i]));
      woke.push_back(i);
    });
  }
  loop().run();
  ASSERT_EQ(woke.size(), static_cast<std::size_t>(kSleepers));
  for (std::size_t k = 1; k < woke.size(); ++k) {
    const int a = woke[k - 1], b = woke[k];
    ASSERT_TRUE(delay_us[a] < delay_us[b] || (delay_us[a] == delay_us[b] && a < b))
        << "fiber " << b << " (" << delay_us[b] << " us) woke after " << a << " (" << delay_us[a]
        << " us)";
  }
}

TEST_F(Time, AFiberWaitingOnAnotherThreadNeedsAKeepAlive) {
  // Without one, the loop cannot know a post is coming: a deadlock, reported.
  auto waiter = loop().spawn([&] { testing::park_forever(); });
  try {
    waiter.join();
    ADD_FAILURE() << "no deadlock reported";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("deadlock"), std::string::npos) << e.what();
  }
  waiter.cancel();
  EXPECT_THROW(waiter.join(), Cancelled);

  // With one, the loop blocks in epoll until the other thread's post arrives.
  auto keep = std::make_unique<Loop::KeepAlive>(loop().keep_alive());
  const pid_t loop_thread = testing::this_tid();
  std::atomic<bool> posted{false};
  int v = run([&] {
    auto& core = *internal::Scheduler::current();
    auto* self = core.running();
    std::thread poster([&] {
      testing::await_loop_wait(loop_thread);
      loop().call_soon_threadsafe([&] { core.wake(*self); });
      posted = true;
    });
    core.park();
    poster.join();
    return 5;
  });
  EXPECT_EQ(v, 5);
  EXPECT_TRUE(posted);
  // Dropping the last KeepAlive on another thread wakes a run() that has
  // nothing else to do, and it returns.
  std::thread dropper([&] {
    testing::await_loop_wait(loop_thread);
    keep.reset();
  });
  const TimePoint start = Clock::now();
  loop().run();
  dropper.join();
  EXPECT_LT(elapsed_since(start), 5s);
}

TEST(TimeShutdown, PendingCallbacksAreDroppedAndSleepersUnwound) {
  bool ran = false, unwound = false;
  {
    Loop loop;
    loop.call_later(1h, [&] { ran = true; });
    loop.spawn([&] {
      struct Flag {
        bool& f;
        ~Flag() { f = true; }
      } flag{unwound};
      this_fiber::sleep_for(1h);
    });
    loop.call_later(10ms, [&] { loop.stop(); });
    loop.run();
  }  // must not wait an hour
  EXPECT_FALSE(ran);
  EXPECT_TRUE(unwound);
}

}  // namespace
}  // namespace fiberloop
