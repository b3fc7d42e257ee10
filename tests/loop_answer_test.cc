// A fiber waiting for another loop's answer: a stream's hand-over from its
// old loop, and the first use of a primitive made on another loop, are
// questions that loop answers between two steps of its fibers. A timeout
// or a cancel that comes first withdraws the question, whether that loop
// is busy, or exists but no longer runs; a loop that answers later finds
// it withdrawn and frees it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include "fiberloop.h"
#include "tests/group_helpers.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::connected_pair;
using testing::unpinned;

// Keeps loop `index` computing, without a suspension point, until
// release() or 10 s; held() says whether release() ended it.
class Busy {
 public:
  Busy(LoopGroup& group, std::size_t index)
      : task_(group.spawn_on(index, [this] {
          spinning_.store(true);
          const TimePoint give_up = Clock::now() + 10s;
          while (!released_.load() && Clock::now() < give_up) {
          }
          return released_.load();
        })) {
    while (!spinning_.load()) std::this_thread::yield();
  }
  void release() { released_.store(true); }
  bool held() { return task_.join(); }

 private:
  std::atomic<bool> spinning_{false}, released_{false};
  Task<bool> task_;
};

// Reads a byte of `stream`; returns it.
char read_byte(Stream& stream) {
  char c = 0;
  while (stream.read({&c, 1}) == 0) {
  }
  return c;
}

// A read from loop 0 of a stream of loop 1 asks loop 1 to hand it over.
// Loop 1 computes for seconds: the read's 50 ms timeout ends the wait (it
// came after the computing, and still threw, before).
TEST(LoopAnswer, ATimeoutEndsAWaitForABusyLoopsHandOver) {
  LoopGroup group(unpinned(2));
  auto [server, client] = group.spawn_on(1, connected_pair).join();
  group.run([&] {
    Busy busy(group, 1);
    char c;
    EXPECT_THROW(with_timeout(50ms, [&] { c = read_byte(server); }), TimeoutError);
    busy.release();
    EXPECT_TRUE(busy.held()) << "the timeout came only after loop 1 had computed for 10 s";
    client.write_all("x");  // the stream moves now, and reads
    EXPECT_EQ(read_byte(server), 'x');
  });
}

// The same wait, ended by a cancel from another fiber.
TEST(LoopAnswer, ACancelEndsAWaitForABusyLoopsHandOver) {
  LoopGroup group(unpinned(2));
  auto [server, client] = group.spawn_on(1, connected_pair).join();
  group.run([&] {
    Busy busy(group, 1);
    auto reader = spawn([&] { return read_byte(server); });
    this_fiber::sleep_for(5ms);
    reader.cancel();
    EXPECT_THROW(reader.join(), Cancelled);
    busy.release();
    EXPECT_TRUE(busy.held()) << "the cancel came only after loop 1 had computed for 10 s";
  });
}

// The first use of a Channel made on loop 1 asks loop 1 to share it.
TEST(LoopAnswer, ATimeoutEndsAWaitForABusyLoopToShareAPrimitive) {
  LoopGroup group(unpinned(2));
  auto channel = group.spawn_on(1, [] { return std::make_shared<Channel<int>>(1); }).join();
  auto mutex = group
                   .spawn_on(1,
                             [] {
                               auto m = std::make_shared<Mutex>();
                               m->lock();  // binds it to loop 1
                               m->unlock();
                               return m;
                             })
                   .join();
  group.run([&] {
    Busy busy(group, 1);
    EXPECT_THROW(with_timeout(50ms, [&] { (void)channel->recv(); }), TimeoutError);
    EXPECT_THROW(with_timeout(50ms, [&] { mutex->lock(); }), TimeoutError);
    busy.release();
    EXPECT_TRUE(busy.held()) << "the timeouts came only after loop 1 had computed for 10 s";
    channel->send(7);  // shared now, from either loop
    EXPECT_EQ(channel->recv(), 7);
    mutex->lock();
    mutex->unlock();
  });
}

// A wait's own deadline ends the wait for the loop that must share the
// primitive first: the wait times out as if nothing came (it returned
// only after the computing, before).
TEST(LoopAnswer, AWaitsOwnDeadlineEndsAWaitForABusyLoopToShareAPrimitive) {
  LoopGroup group(unpinned(2));
  struct Made {
    Event event;
    Mutex mutex;
    ConditionVariable cv;
    Channel<int> channel{1};
  };
  auto made = group
                  .spawn_on(1,
                            [] {
                              auto m = std::make_shared<Made>();
                              m->event.clear();  // binds each to loop 1
                              m->cv.notify_one();
                              (void)m->channel.try_recv();
                              return m;
                            })
                  .join();
  group.run([&] {
    Mutex mutex;  // this loop's
    Busy busy(group, 1);
    EXPECT_FALSE(made->event.wait_for(50ms));
    {
      std::unique_lock lock(mutex);
      EXPECT_FALSE(made->cv.wait_for(lock, 50ms));
      EXPECT_TRUE(lock.owns_lock());
    }
    std::optional<int> value;
    EXPECT_EQ(select_for(50ms, made->channel.recv_case(value)), std::nullopt);
    bool set_seen = true;  // a plain thread's wait_for, blocked the same way
    std::thread([&] { set_seen = made->event.wait_for(50ms); }).join();
    EXPECT_FALSE(set_seen);
    busy.release();
    EXPECT_TRUE(busy.held()) << "the waits timed out only after loop 1 had computed for 10 s";
    made->channel.send(3);  // shared now
    EXPECT_EQ(select_for(1s, made->channel.recv_case(value)), std::optional<std::size_t>(0));
    EXPECT_EQ(value, 3);
  });
}

// A Loop on a thread of its own whose run() has returned, and which exists
// until release(): it answers nothing meanwhile, then drains what it was
// asked as it is destroyed.
class StoppedLoop {
 public:
  template <class F>
  explicit StoppedLoop(F setup) {
    thread_ = std::thread([this, setup] {
      Loop loop;
      loop.run_until_complete(setup);
      stopped_.store(true);
      const auto give_up = std::chrono::steady_clock::now() + 10s;
      while (!released_.load() && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(1ms);
      }
      held_ = released_.load();
    });
    while (!stopped_.load()) std::this_thread::yield();
  }
  // Destroys the loop; returns whether it existed until now (not 10 s).
  bool release() {
    released_.store(true);
    thread_.join();
    return held_;
  }
  ~StoppedLoop() {
    if (thread_.joinable()) release();
  }

 private:
  std::atomic<bool> stopped_{false}, released_{false};
  bool held_ = false;
  std::thread thread_;
};

TEST(LoopAnswer, ATimeoutEndsAWaitForALoopThatNoLongerRuns) {
  std::optional<std::pair<TcpStream, TcpStream>> pair;
  StoppedLoop old([&] { pair.emplace(connected_pair()); });
  auto& [server, client] = *pair;
  LoopGroup group(unpinned(1));
  group.run([&] {
    EXPECT_THROW(with_timeout(50ms, [&] { (void)read_byte(server); }), TimeoutError);
    // Its loop, destroyed, drains the withdrawn question; the stream then
    // has no loop, and the next read takes it.
    EXPECT_TRUE(old.release()) << "the timeout came only after the old loop was destroyed";
    client.write_all("y");
    EXPECT_EQ(read_byte(server), 'y');
  });
}

// The same for an Event of such a loop, and the Event's own deadline.
TEST(LoopAnswer, AWaitsOwnDeadlineEndsAWaitForALoopThatNoLongerRuns) {
  std::shared_ptr<Event> event;
  StoppedLoop old([&] {
    event = std::make_shared<Event>();
    event->clear();  // binds it to that loop
  });
  LoopGroup group(unpinned(1));
  group.run([&] {
    EXPECT_FALSE(event->wait_for(50ms));
    EXPECT_TRUE(old.release()) << "the wait timed out only after the old loop was destroyed";
    event->set();
    EXPECT_TRUE(event->wait_for(1s));
  });
}

// A group's shutdown cancels a fiber waiting for such a loop: it unwinds,
// and is not abandoned.
TEST(LoopAnswer, AGroupsShutdownUnwindsAFiberWaitingForALoopThatNoLongerRuns) {
  std::optional<std::pair<TcpStream, TcpStream>> pair;
  StoppedLoop old([&] { pair.emplace(connected_pair()); });
  std::atomic<int> unwound{0};
  {
    LoopGroup group(unpinned(2));
    std::atomic<bool> reading{false};
    (void)group.spawn_on(1, [&] {
      struct Unwinds {
        std::atomic<int>& count;
        ~Unwinds() { ++count; }
      } unwinds{unwound};
      reading.store(true);
      (void)read_byte(pair->first);
    });
    while (!reading.load()) std::this_thread::yield();
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(unwound.load(), 1) << "the reading fiber was abandoned, not unwound";
  EXPECT_TRUE(old.release());
}

// Timeouts of every length from 0 to 2 ms around the hand-over from a loop
// that yields every 1 ms as it computes. With no data, the read waits, so
// the stream must move first: the question is withdrawn, or taken just as
// the timeout comes (the stream is then here, and the read throws at its
// park). Either way the stream moves back to loop 1 for the next round, and
// no byte is lost.
TEST(LoopAnswer, TimeoutsRacingHandOvers) {
  LoopGroup group(unpinned(2));
  auto [server, client] = group.spawn_on(1, connected_pair).join();
  std::atomic<bool> done{false};
  auto churn = group.spawn_on(1, [&] {
    while (!done.load()) {
      const TimePoint until = Clock::now() + 1ms;
      while (Clock::now() < until) {
      }
      this_fiber::yield();
    }
  });
  group.run([&] {
    for (int round = 0; round < 200; ++round) {
      const auto timeout = std::chrono::microseconds(50 * (round % 40));
      EXPECT_THROW(with_timeout(timeout, [&] { (void)read_byte(server); }), TimeoutError);
      auto back = group.spawn_on(1, [&] { return read_byte(server); });
      testing::await_fd_waiter(group, 1);
      client.write_all("w");
      EXPECT_EQ(back.join(), 'w');
    }
    done.store(true);
    churn.join();
  });
}

}  // namespace
}  // namespace fiberloop
