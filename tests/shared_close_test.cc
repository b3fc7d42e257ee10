// Where a closing loop meets a primitive shared with other threads, and a
// join from a plain thread meets a loop that has returned: each case here
// hung before its fix.
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

// A plain thread joins while the loop runs its only task to the end:
// run() may return before it takes the join, which must still answer.
TEST(SharedCloseTest, APlainThreadsJoinEndsWhenTheLoopHasReturned) {
  within_bound("a plain thread's join after run() returned", [] {
    for (int round = 0; round < 2000; ++round) {
      Loop loop;
      Task<int> task = loop.spawn([] { return 7; });
      std::promise<int> got;
      std::thread joiner([&] { got.set_value(task.join()); });
      loop.run();
      auto value = got.get_future();
      ASSERT_EQ(value.wait_for(10s), std::future_status::ready) << "round " << round;
      EXPECT_EQ(value.get(), 7);
      joiner.join();
    }
  });
}

// Tasks dropped, cancelled and joined on plain threads at the moment their
// loop is destroyed on its own: each either reaches the loop or, the loop
// gone, acts on the record itself (before: a post to a null or freed loop).
TEST(SharedCloseTest, TasksUsedElsewhereWhileTheirLoopIsDestroyed) {
  within_bound("Task calls racing ~Loop", [] {
    for (int round = 0; round < 3000; ++round) {
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
