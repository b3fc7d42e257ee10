// Where a closing loop meets a primitive shared with other threads, and a
// join from another thread meets a loop that has halted: each case here hung
// before its fix.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <optional>
#include <thread>

#include "fiberloop.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

// The race cases run this many times fewer rounds under the sanitizers,
// which slow each round 10-50x.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int kFewerUnderSanitizers = 10;
#else
constexpr int kFewerUnderSanitizers = 1;
#endif

// Runs `body` on a thread of its own and fails (ending the process: the
// thread cannot be stopped) if it has not returned within 120 s.
template <class Body>
void within_bound(const char* what, Body body) {
  auto done = std::async(std::launch::async, body);
  if (done.wait_for(120s) != std::future_status::ready) {
    std::fprintf(stderr, "%s: still running after 120 s (a hang)\n", what);
    std::fflush(stderr);
    std::_Exit(1);
  }
  done.get();
}

// Two fibers of a loop wait on a primitive another thread has used (so it
// takes its lock); the loop is then destroyed, which cancels both. The
// first one's cancel used to make its pass through the ready queue with
// the lock held, and the second then spun on that lock for ever.
template <class Prepare, class Wait>
void two_waiters_then_close(Prepare make_shared_from_this_thread, Wait wait) {
  within_bound("~Loop with two waiters on a shared primitive", [&] {
    make_shared_from_this_thread();
    std::atomic<int> cancelled{0};
    {
      Loop loop;
      for (int i = 0; i < 2; ++i) {
        loop.spawn([&] {
              try {
                wait();
              } catch (const Cancelled&) {
                ++cancelled;
                throw;
              }
            })
            .detach();
      }
      loop.run_until_complete([] { this_fiber::yield(); });
    }
    EXPECT_EQ(cancelled.load(), 2);
  });
}

TEST(SharedCloseTest, TwoReceiversOnASharedChannel) {
  Channel<int> ch;
  two_waiters_then_close([&] { (void)ch.try_recv(); }, [&] { (void)ch.recv(); });
}

TEST(SharedCloseTest, TwoSendersOnASharedChannel) {
  Channel<int> ch;
  two_waiters_then_close([&] { (void)ch.try_recv(); }, [&] { ch.send(1); });
}

TEST(SharedCloseTest, TwoWaitersOnASharedMutex) {
  Mutex m;
  std::promise<void> held;
  std::promise<void> release;
  std::thread holder([&] {  // a plain thread holds it (and so shares it)
    m.lock();
    held.set_value();
    release.get_future().wait();
    m.unlock();
  });
  held.get_future().wait();
  two_waiters_then_close([] {}, [&] { std::lock_guard guard(m); });
  release.set_value();
  holder.join();
}

TEST(SharedCloseTest, TwoWaitersOnASharedEvent) {
  Event event;
  two_waiters_then_close([&] { event.clear(); }, [&] { event.wait(); });
}

TEST(SharedCloseTest, TwoWaitersOnASharedSemaphore) {
  Semaphore semaphore(0);
  two_waiters_then_close([&] { (void)semaphore.try_acquire(); }, [&] { semaphore.acquire(); });
}

TEST(SharedCloseTest, TwoSelectsOverASharedChannel) {
  Channel<int> a, b;
  two_waiters_then_close([&] { (void)a.try_recv(); },
                         [&] {
                           std::optional<int> from_a, from_b;
                           (void)select(a.recv_case(from_a), b.recv_case(from_b));
                         });
}

// A fiber that catches Cancelled and waits again on a shared primitive, for
// ever: the closing loop still gets control back, and abandons it.
TEST(SharedCloseTest, AFiberThatRetriesASharedWaitIsAbandoned) {
  within_bound("~Loop with a fiber retrying a shared wait", [] {
    Channel<int> ch;
    (void)ch.try_recv();
    std::atomic<int> tries{0};
    testing::internal::CaptureStderr();
    {
      Loop loop;
      loop.spawn([&] {
            for (;;) {
              try {
                (void)ch.recv();
              } catch (const Cancelled&) {
                ++tries;
              }
            }
          })
          .detach();
      loop.run_until_complete([] { this_fiber::yield(); });
    }
    const std::string said = testing::internal::GetCapturedStderr();
    EXPECT_GT(tries.load(), 1);
    EXPECT_NE(said.find("abandoned"), std::string::npos) << said;
  });
}

// How a loop comes to a halt, in the cases below: run() returns with no
// fiber left, or run_until_complete() stops once its main fiber returns
// (which leaves what is still in its cross-thread queue there).
enum class Halt { kRunOutOfFibers, kMainReturned };

// The rounds of join_as_the_loop_halts(), as both threads see them.
struct Rounds {
  // Before the fix, about one round in 5000 left a fiber's join waiting.
  static constexpr int kCount = 20000 / kFewerUnderSanitizers;
  std::atomic<Task<int>*> task{nullptr};  // this round's, published before it runs
  std::atomic<int> started{-1};           // set by round r's task as it returns
  std::atomic<int> joined{-1};            // set by the joiner once round r's join returned r
  std::atomic<bool> stop{false};          // the test has failed: the joiner returns

  // The joiner's side: joins each round's task as it returns.
  void join_each() {
    for (int round = 0; round < kCount; ++round) {
      while (started.load() != round) {
        if (stop.load()) return;
      }
      if (task.load()->join() != round) return;  // the test sees `joined` stop
      joined.store(round);
    }
  }
};

// Another thread joins a task just as it finishes and its loop halts: the
// loop may halt before it takes the join, which must still end, on its
// own, well before the 10 s allowed. `run_joiner(rounds)` runs on that
// thread and calls rounds.join_each().
template <class RunJoiner>
void join_as_the_loop_halts(const char* what, Halt halt, RunJoiner run_joiner) {
  within_bound(what, [&] {
    Rounds rounds;
    Loop loop;
    std::thread joiner([&] { run_joiner(rounds); });
    auto joined = [&](int round) {
      const auto give_up = std::chrono::steady_clock::now() + 10s;
      while (rounds.joined.load() != round) {
        if (std::chrono::steady_clock::now() > give_up) return false;
        std::this_thread::yield();
      }
      return true;
    };
    for (int round = 0; round < Rounds::kCount; ++round) {
      Task<int> task = loop.spawn([&rounds, round] {
        rounds.started.store(round);
        return round;
      });
      rounds.task.store(&task);
      if (halt == Halt::kRunOutOfFibers) {
        loop.run();
      } else {
        loop.run_until_complete([] { this_fiber::yield(); });
      }
      if (!joined(round)) {
        loop.run();  // answers a join left in its queue, so that the thread ends
        const bool late = joined(round);
        rounds.stop.store(true);
        joiner.join();
        FAIL() << what << ": the join was still waiting after 10 s, in round " << round
               << (late ? " (it ended once the loop ran again)" : "");
      }
    }
    joiner.join();
  });
}

void join_from_a_plain_thread(Rounds& rounds) { rounds.join_each(); }

void join_from_a_fiber_of_another_loop(Rounds& rounds) {
  Loop there;
  there.run_until_complete([&] { rounds.join_each(); });
}

TEST(SharedCloseTest, APlainThreadsJoinEndsWhenTheLoopHasReturned) {
  join_as_the_loop_halts("a plain thread's join as run() returns", Halt::kRunOutOfFibers,
                         join_from_a_plain_thread);
}

TEST(SharedCloseTest, APlainThreadsJoinEndsWhenMainHasReturned) {
  join_as_the_loop_halts("a plain thread's join as main returns", Halt::kMainReturned,
                         join_from_a_plain_thread);
}

TEST(SharedCloseTest, AJoinFromAnotherLoopEndsWhenTheLoopHasReturned) {
  join_as_the_loop_halts("another loop's join as run() returns", Halt::kRunOutOfFibers,
                         join_from_a_fiber_of_another_loop);
}

TEST(SharedCloseTest, AJoinFromAnotherLoopEndsWhenMainHasReturned) {
  join_as_the_loop_halts("another loop's join as main returns", Halt::kMainReturned,
                         join_from_a_fiber_of_another_loop);
}

// Tasks dropped, cancelled and joined on plain threads at the moment their
// loop is destroyed on its own: each either reaches the loop or, the loop
// gone, acts on the record itself (before: a post to a null or freed loop).
TEST(SharedCloseTest, TasksUsedElsewhereWhileTheirLoopIsDestroyed) {
  within_bound("Task calls racing ~Loop", [] {
    for (int round = 0; round < 3000 / kFewerUnderSanitizers; ++round) {
      std::optional<Task<int>> dropped, cancelled, joined;
      std::atomic<bool> go{false};
      std::atomic<int> joined_value{0};
      std::thread dropper([&] {
        while (!go.load()) {
        }
        dropped.reset();
      });
      std::thread canceller([&] {
        while (!go.load()) {
        }
        cancelled->cancel();
      });
      std::thread joiner([&] {
        while (!go.load()) {
        }
        joined_value = joined->join();
      });
      {
        Loop loop;
        dropped.emplace(loop.spawn([] { return 1; }));
        cancelled.emplace(loop.spawn([] { return 2; }));
        joined.emplace(loop.spawn([] { return 3; }));
        loop.run();
        go = true;
      }  // ~Loop races the three calls
      dropper.join();
      canceller.join();
      joiner.join();
      EXPECT_EQ(joined_value.load(), 3) << "round " << round;
      EXPECT_EQ(cancelled->join(), 2);
    }
  });
}

// A group made on another group's loop thread (pinned to one CPU) still
// takes one loop per CPU of the process's mask.
TEST(SharedCloseTest, AGroupMadeOnALoopThreadCountsTheProcessesCpus) {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  ASSERT_EQ(::sched_getaffinity(::getpid(), sizeof mask, &mask), 0);
  const auto cpus = static_cast<std::size_t>(CPU_COUNT(&mask));
  LoopGroup outer;
  const std::size_t inner = outer.run([] { return LoopGroup().size(); });
  EXPECT_EQ(inner, cpus);
}

}  // namespace
}  // namespace fiberloop
