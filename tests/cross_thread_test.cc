// The sync/ primitives between fibers of different loops and plain threads:
// each works across threads, a plain thread's wait blocks it, a primitive
// made outside any loop is shared by whoever uses it, and the races the
// shared mode exists for keep their invariant under thousands of rounds
// (run under ThreadSanitizer in CI): cancel vs a remote wake, close vs a
// remote send, timeout vs a remote notify, select across loops.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>
#include <vector>

#include "fiberloop.h"
#include "tests/group_helpers.h"
#include "tests/race_rounds.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

constexpr int kRounds = testing::kRaceRounds;
using testing::block_until_parked;
using testing::two_loops;

// ---- each primitive across loops and threads ------------------------------

TEST(CrossThread, AnEventSetOnOneLoopWakesWaitersOnAnotherAndAPlainThread) {
  LoopGroup group(two_loops());
  Event ev;
  std::thread plain([&ev] { ev.wait(); });  // blocks this thread
  auto waiter = group.spawn_on(1, [&ev] {
    ev.wait();
    return 1;
  });
  group.run([&] {
    block_until_parked(group, 1, "waiting on an Event");  // a waiter of another loop
    ev.set();
  });
  EXPECT_EQ(waiter.join(), 1);
  plain.join();
  EXPECT_TRUE(ev.is_set());
}

TEST(CrossThread, AFiberWaitsForAPlainThreadsSetWithoutAKeepAlive) {
  const bool set = fiberloop::run([] {
    Event ev;  // this loop's: a plain thread's set() makes it shared
    std::thread t([&ev] {
      std::this_thread::sleep_for(5ms);
      ev.set();
    });
    ev.wait();
    run_blocking([&t] { t.join(); });
    return ev.is_set();
  });
  EXPECT_TRUE(set);
}

TEST(CrossThread, AMutexGuardsACounterAcrossLoopsAndPlainThreads) {
  LoopGroup group(two_loops());
  Mutex m;
  long counter = 0;
  constexpr int kEach = 2000;
  std::vector<Task<void>> fibers;
  for (std::size_t i = 0; i < group.size(); ++i) {
    for (int f = 0; f < 4; ++f) {
      fibers.push_back(group.spawn_on(i, [&] {
        for (int k = 0; k < kEach; ++k) {
          std::lock_guard lock(m);
          const long seen = counter;
          if (k % 7 == 0) this_fiber::yield();  // hold it across a switch
          counter = seen + 1;
        }
      }));
    }
  }
  std::thread plain([&] {
    for (int k = 0; k < kEach; ++k) {
      std::lock_guard lock(m);
      ++counter;
    }
  });
  for (auto& f : fibers) f.join();
  plain.join();
  EXPECT_EQ(counter, static_cast<long>(kEach) * (8 + 1));
}

TEST(CrossThread, AnUnbufferedChannelPingPongsBetweenLoops) {
  LoopGroup group(two_loops());
  Channel<int> ping, pong;
  auto echo = group.spawn_on(1, [&] {
    while (auto v = ping.recv()) pong.send(*v + 1);
  });
  const int last = group.run([&] {
    int v = 0;
    for (int k = 0; k < kRounds; ++k) {
      ping.send(v);
      v = *pong.recv();
    }
    ping.close();
    return v;
  });
  echo.join();
  EXPECT_EQ(last, kRounds);
}

TEST(CrossThread, ABufferedChannelCarriesEveryValueFromManyProducersToManyConsumers) {
  LoopGroup group(two_loops());
  Channel<long> ch(16);
  constexpr long kPer = 2000;
  std::vector<Task<void>> producers;
  std::vector<Task<long>> consumers;
  for (std::size_t i = 0; i < group.size(); ++i) {
    producers.push_back(group.spawn_on(i, [&ch, i] {
      for (long k = 1; k <= kPer; ++k) ch.send(k + static_cast<long>(i) * kPer);
    }));
    consumers.push_back(group.spawn_on(1 - i, [&ch] {
      long sum = 0;
      while (auto v = ch.recv()) sum += *v;
      return sum;
    }));
  }
  long plain_sum = 0;
  std::thread plain([&] {  // a plain thread consumes too
    while (auto v = ch.recv()) plain_sum += *v;
  });
  for (auto& p : producers) p.join();
  ch.close();
  long total = 0;
  for (auto& c : consumers) total += c.join();
  plain.join();
  total += plain_sum;
  const long n = 2 * kPer;
  EXPECT_EQ(total, n * (n + 1) / 2);
}

TEST(CrossThread, ConditionVariableAndSemaphoreAndWaitGroupAcrossLoops) {
  LoopGroup group(two_loops());
  Mutex m;
  ConditionVariable cv;
  int stage = 0;
  Semaphore slots(2);
  std::atomic<int> inside{0}, most{0};
  WaitGroup wg;
  wg.add(8);
  for (int k = 0; k < 8; ++k) {
    group
        .spawn_on(k % 2,
                  [&] {
                    {
                      std::unique_lock lock(m);
                      cv.wait(lock, [&] { return stage == 1; });
                    }
                    slots.acquire();
                    const int now = ++inside;
                    int seen = most.load();
                    while (now > seen && !most.compare_exchange_weak(seen, now)) {
                    }
                    this_fiber::sleep_for(1ms);
                    --inside;
                    slots.release();
                    wg.done();
                  })
        .detach();
  }
  std::thread opener([&] {
    std::this_thread::sleep_for(5ms);
    std::lock_guard lock(m);
    stage = 1;
    cv.notify_all();
  });
  wg.wait();  // a plain thread blocks until all eight are done
  opener.join();
  EXPECT_LE(most.load(), 2);
  EXPECT_EQ(slots.available(), 2u);
}

TEST(CrossThread, APromiseSetOnOneLoopCompletesFuturesEverywhere) {
  LoopGroup group(two_loops());
  Promise<int> p;
  Future<int> f = p.get_future();
  std::thread plain([f] { EXPECT_EQ(f.get(), 9); });
  auto on_one = group.spawn_on(1, [f] { return f.get(); });
  std::atomic<int> called{0};
  group.run([&] {
    f.add_done_callback([&called](const Future<int>& done) { called = done.get(); });
    this_fiber::sleep_for(2ms);
    group.spawn_on(1, [&p] { p.set_value(9); }).join();
    // The callback runs on this loop, soon: wait for it (bounded).
    const TimePoint give_up = Clock::now() + 10s;
    while (called == 0 && Clock::now() < give_up) this_fiber::sleep_for(100us);
  });
  EXPECT_EQ(on_one.join(), 9);
  plain.join();
  EXPECT_EQ(called, 9);
}

TEST(CrossThread, APrimitiveMadeOutsideAnyLoopBelongsToTheFirstLoopThatUsesIt) {
  Event ev;  // no loop yet
  fiberloop::run([&] {
    auto waiter = spawn([&] { ev.wait(); });
    this_fiber::yield();
    ev.set();
    waiter.join();
  });
  EXPECT_TRUE(ev.is_set());
}

TEST(CrossThread, AWaitOnALoopsThreadOutsideAFiberIsRefusedNamingTheOperation) {
  LoopGroup group(two_loops());
  Event ev;
  group.run([] {});
  Loop lone;  // this thread's loop; not running, not a fiber
  try {
    ev.wait();
    FAIL() << "no exception";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("Event::wait"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("outside any fiber"), std::string::npos) << e.what();
  }
}

// ---- the races, with their invariants -----------------------------------------

// Cancel vs a remote wake: a receiver on loop 1 is cancelled while loop 0
// hands it a value. A send that returned was received: the receiver that
// was handed a value returns it even if the cancel came too.
TEST(CrossThreadRace, CancelVersusRemoteSendLosesNoValue) {
  LoopGroup group(two_loops());
  Channel<int> ch;
  std::atomic<long> received{0};
  long sent = 0;
  group.run([&] {
    for (int k = 0; k < kRounds; ++k) {
      auto receiver = group.spawn_on(1, [&] {
        if (auto v = ch.recv()) received += *v;
      });
      for (int y = 0; y < k % 4; ++y) this_fiber::yield();
      if (k % 2 == 0) receiver.cancel();
      int one = 1;
      if (select_for(std::chrono::microseconds(k % 50), ch.send_case(one))) ++sent;
      receiver.cancel();
      try {
        receiver.join();
      } catch (const Cancelled&) {
      }
    }
  });
  EXPECT_EQ(received.load(), sent);
}

// Close vs remote sends: senders on both loops and a plain thread race a
// close from loop 0. Every send that returned is received, buffered ones
// included; every other send threw ChannelClosed.
TEST(CrossThreadRace, CloseVersusRemoteSendsLosesNoValue) {
  for (int round = 0; round < kRounds / 100 + 3; ++round) {
    LoopGroup group(two_loops());
    Channel<int> ch(4);
    std::atomic<long> sent{0}, received{0};
    const auto sender = [&] {
      try {
        for (;;) {
          ch.send(1);
          ++sent;
        }
      } catch (const ChannelClosed&) {
      }
    };
    auto s0 = group.spawn_on(0, sender);
    auto s1 = group.spawn_on(1, sender);
    std::thread plain(sender);
    auto receiver = group.spawn_on(1, [&] {
      while (auto v = ch.recv()) received += *v;
    });
    group.run([&] {
      this_fiber::sleep_for(std::chrono::microseconds(200 * (round % 5)));
      ch.close();
    });
    s0.join();
    s1.join();
    plain.join();
    receiver.join();
    EXPECT_EQ(received.load(), sent.load()) << "round " << round;
  }
}

// Timeout vs a remote release: fibers on loop 1 acquire a semaphore under
// short timeouts while a plain thread releases it. No permit is lost or
// made up: the ones taken plus the ones left equal the ones released.
TEST(CrossThreadRace, TimeoutVersusRemoteReleaseKeepsEveryPermit) {
  LoopGroup group(two_loops());
  Semaphore sem(0);
  std::atomic<long> acquired{0};
  std::atomic<bool> done{false};
  std::vector<Task<void>> takers;
  for (int f = 0; f < 4; ++f) {
    takers.push_back(group.spawn_on(1, [&, f] {
      int k = f;
      while (!done) {
        try {
          with_timeout(std::chrono::microseconds(20 + (k++ % 7) * 30), [&] {
            sem.acquire();
            ++acquired;
          });
        } catch (const TimeoutError&) {
        }
      }
    }));
  }
  const long released = kRounds;
  std::thread releaser([&] {
    for (long k = 0; k < released; ++k) {
      sem.release();
      if (k % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  });
  releaser.join();
  std::this_thread::sleep_for(20ms);
  done = true;
  for (auto& t : takers) t.join();
  EXPECT_EQ(acquired.load() + static_cast<long>(sem.available()), released);
}

// select across loops: one fiber selects (with timeouts) on two channels fed
// from loop 1 and from a plain thread; every value sent arrives exactly once.
TEST(CrossThreadRace, SelectAcrossLoopsReceivesEveryValueOnce) {
  LoopGroup group(two_loops());
  Channel<long> a, b(2);
  constexpr long kEach = kRounds;
  auto feeder = group.spawn_on(1, [&] {
    for (long k = 1; k <= kEach; ++k) a.send(k);
    a.close();
  });
  std::thread plain([&] {
    for (long k = 1; k <= kEach; ++k) b.send(k * 1000);
    b.close();
  });
  const long sum = group.run([&] {
    long total = 0;
    bool a_open = true, b_open = true;
    while (a_open || b_open) {
      std::optional<long> va, vb;
      std::optional<std::size_t> which;
      if (a_open && b_open) {
        which = select_for(std::chrono::microseconds(100), a.recv_case(va), b.recv_case(vb));
      } else if (a_open) {
        which = select_for(std::chrono::microseconds(100), a.recv_case(va));
      } else {
        which = select_for(std::chrono::microseconds(100), b.recv_case(vb));
        if (which) which = 1;
      }
      if (!which) continue;  // timed out: try again
      if (*which == 0) {
        if (va)
          total += *va;
        else
          a_open = false;
      } else {
        if (vb)
          total += *vb;
        else
          b_open = false;
      }
    }
    return total;
  });
  feeder.join();
  plain.join();
  EXPECT_EQ(sum, kEach * (kEach + 1) / 2 * 1001);
}

}  // namespace
}  // namespace fiberloop
