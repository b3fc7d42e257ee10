// LoopGroup: threads and loops, spawn_on and run from anywhere, Tasks used
// from other loops and plain threads, the group's deadlock rule, its
// introspection, and its bad input.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "fiberloop.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

// A connected TCP pair on loopback: {the accepted end, the connecting end}.
std::pair<TcpStream, TcpStream> connected_pair() {
  TcpListener listener = TcpListener::bind(SocketAddress::from_ip("127.0.0.1", 0));
  TcpStream client = TcpStream::connect(listener.local_address());
  return {listener.accept(), std::move(client)};
}

GroupOptions unpinned(std::size_t loops) {
  GroupOptions options;
  options.loops = loops;
  options.pin_threads = false;
  return options;
}

TEST(Group, DefaultSizeIsTheAffinityMask) {
  cpu_set_t mask;
  ASSERT_EQ(::sched_getaffinity(0, sizeof mask, &mask), 0);
  LoopGroup group;
  EXPECT_EQ(group.size(), static_cast<std::size_t>(CPU_COUNT(&mask)));
}

TEST(Group, EachLoopRunsOnItsOwnThreadWithItsIndex) {
  LoopGroup group(unpinned(3));
  std::vector<std::thread::id> threads;
  for (std::size_t i = 0; i < group.size(); ++i) {
    auto task = group.spawn_on(i, [&group] {
      EXPECT_EQ(LoopGroup::current(), &group);
      return std::make_pair(Loop::current()->index(), std::this_thread::get_id());
    });
    auto [index, thread] = task.join();  // from a plain thread: blocks
    EXPECT_EQ(index, i);
    EXPECT_NE(thread, std::this_thread::get_id());
    threads.push_back(thread);
  }
  EXPECT_NE(threads[0], threads[1]);
  EXPECT_NE(threads[1], threads[2]);
  EXPECT_EQ(LoopGroup::current(), nullptr);
  fiberloop::run([] { EXPECT_EQ(Loop::current()->index(), 0u); });  // a lone loop
}

TEST(Group, RunReturnsMainsValueAndMayBeCalledAgain) {
  LoopGroup group(unpinned(2));
  EXPECT_EQ(group.run([] { return 6 * 7; }), 42);
  EXPECT_EQ(group.run([] { return Loop::current()->index(); }), 0u);
  EXPECT_THROW(group.run([]() -> int { throw std::runtime_error("boom"); }), std::runtime_error);
}

TEST(Group, RunGroupSpreadsWorkOverEveryLoopAndJoinsAcrossLoops) {
  const long sum = run_group(
      [] {
        LoopGroup& group = *LoopGroup::current();
        std::vector<Task<long>> parts;
        for (std::size_t i = 0; i < group.size(); ++i) {
          parts.push_back(group.spawn_on(i, [i] {
            long s = 0;
            for (int k = 0; k < 1000; ++k) {
              s += static_cast<long>(i);
              if (k % 100 == 0) this_fiber::yield();
            }
            return s;
          }));
        }
        long total = 0;
        for (auto& p : parts) total += p.join();  // from loop 0's fiber: parks
        return total;
      },
      unpinned(4));
  EXPECT_EQ(sum, 1000L * (0 + 1 + 2 + 3));
}

TEST(Group, TaskFromAnotherLoopCanBeCancelledAndReportsDone) {
  LoopGroup group(unpinned(2));
  group.run([&group] {
    auto sleeper = group.spawn_on(1, [] { this_fiber::sleep_for(1h); });
    EXPECT_FALSE(sleeper.done());
    this_fiber::sleep_for(5ms);
    sleeper.cancel();  // from loop 0, for a fiber of loop 1
    EXPECT_THROW(sleeper.join(), Cancelled);
    EXPECT_TRUE(sleeper.done());
  });
}

TEST(Group, AJoinerOnAnotherLoopCanBeCancelledWhileItWaits) {
  LoopGroup group(unpinned(2));
  group.run([&group] {
    Event release;
    auto worker = group.spawn_on(1, [&release] {
      release.wait();
      return 7;
    });
    auto joiner = spawn([&worker] { return worker.join(); });
    this_fiber::sleep_for(5ms);
    joiner.cancel();
    EXPECT_THROW(joiner.join(), Cancelled);
    release.set();                // from loop 0, for a waiter on loop 1
    EXPECT_EQ(worker.join(), 7);  // joinable still: the cancelled join did not consume it
  });
}

TEST(Group, DroppingATaskOnAnotherThreadDetachesIt) {
  LoopGroup group(unpinned(2));
  std::atomic<bool> ran{false};
  {
    auto task = group.spawn_on(1, [&ran] {
      this_fiber::sleep_for(2ms);
      ran = true;
    });
  }  // dropped here, on a plain thread
  group.run([&ran] {
    while (!ran) this_fiber::sleep_for(1ms);
  });
  EXPECT_TRUE(ran);
}

TEST(Group, DestroyingTheGroupCancelsAndUnwindsEveryFiber) {
  std::atomic<int> unwound{0};
  {
    LoopGroup group(unpinned(2));
    for (std::size_t i = 0; i < group.size(); ++i) {
      for (int k = 0; k < 10; ++k) {
        group
            .spawn_on(i,
                      [&unwound] {
                        struct Count {
                          std::atomic<int>& n;
                          ~Count() { ++n; }
                        } count{unwound};
                        this_fiber::sleep_for(1h);
                      })
            .detach();
      }
    }
    group.run([] { this_fiber::sleep_for(5ms); });  // they have all started
  }
  EXPECT_EQ(unwound, 20);
}

TEST(Group, StopEndsTheLoopsAndLaterWorkIsRefused) {
  LoopGroup group(unpinned(2));
  EXPECT_EQ(group.run([] { return 1; }), 1);
  group.stop();
  try {
    group.spawn_on(0, [] {});
    FAIL() << "spawn_on after stop() did not throw";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("stopped"), std::string::npos) << e.what();
  }
}

// ---- bad input ----------------------------------------------------------------

TEST(Group, SpawnOnPastTheSizeThrowsOutOfRangeStatingTheSize) {
  LoopGroup group(unpinned(2));
  try {
    group.spawn_on(2, [] {});
    FAIL() << "no exception";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("has 2 loops"), std::string::npos) << e.what();
  }
  EXPECT_THROW(group.loop(5), std::out_of_range);
}

TEST(Group, MoreLoopsThanCpusWorkUnpinnedWithOneWarning) {
  ::testing::internal::CaptureStderr();
  std::size_t size = 0;
  {
    GroupOptions options;
    options.loops = 64;  // more than any test machine's mask
    LoopGroup group(options);
    size = group.size();
    group.run([&group] {
      std::vector<Task<std::size_t>> all;
      for (std::size_t i = 0; i < group.size(); ++i) {
        all.push_back(group.spawn_on(i, [] { return Loop::current()->index(); }));
      }
      for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].join(), i);
    });
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(size, 64u);
  EXPECT_NE(err.find("run unpinned"), std::string::npos) << err;
  EXPECT_EQ(err.find("run unpinned"), err.rfind("run unpinned")) << "warned more than once";
}

TEST(Group, DestroyingAGroupLoopByHandThrowsLogicError) {
  LoopGroup group(unpinned(2));
  // On the loop's own thread, so that only the group rule stands in the way.
  auto what = group.spawn_on(1, [&group] {
    try {
      group.loop(1).~Loop();
      return std::string("(no exception)");
    } catch (const std::logic_error& e) {
      return std::string(e.what());
    }
  });
  const std::string w = what.join();
  EXPECT_NE(w.find("belongs to a LoopGroup"), std::string::npos) << w;
  EXPECT_EQ(group.run([] { return 3; }), 3);  // the loop is intact
}

TEST(Group, DestroyingTheGroupFromItsOwnFiberThrowsLogicErrorAndDoesNotDeadlock) {
  // The group's storage outlives the refused destructor (its loops run on,
  // leaked on purpose): a destructor that throws has still ended the object.
  alignas(LoopGroup) static unsigned char storage[sizeof(LoopGroup)];
  auto* group = new (storage) LoopGroup(unpinned(2));
  const std::string w = group->run([group] {
    try {
      group->~LoopGroup();
      return std::string("(no exception)");
    } catch (const std::logic_error& e) {
      return std::string(e.what());
    }
  });
  EXPECT_NE(w.find("would wait for itself"), std::string::npos) << w;
}

// ---- deadlock -------------------------------------------------------------------

TEST(Group, AGroupWideDeadlockIsReportedNamingEveryParkedFiberOnEveryLoop) {
  Event never;  // outlives the group: its fibers wait on it until ~LoopGroup
  LoopGroup group(unpinned(2));
  try {
    group.run([&] {
      auto other = group.spawn_on(1, SpawnOptions{.name = "stuck-on-1"}, [&] { never.wait(); });
      never.wait();
      other.join();
    });
    FAIL() << "no deadlock reported";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("deadlock"), std::string::npos) << what;
    EXPECT_NE(what.find("== loop 0"), std::string::npos) << what;
    EXPECT_NE(what.find("== loop 1"), std::string::npos) << what;
    EXPECT_NE(what.find("'stuck-on-1' parked"), std::string::npos) << what;
    EXPECT_NE(what.find("waiting on an Event"), std::string::npos) << what;
  }
}

TEST(Group, ALoopWaitingOnAnotherLoopIsNotDeadlocked) {
  const int v = run_group(
      [] {
        Channel<int> ch;
        auto producer = LoopGroup::current()->spawn_on(1, [&ch] {
          this_fiber::sleep_for(300ms);  // loop 0 waits the whole time, with nothing to do
          ch.send(5);
        });
        const int got = *ch.recv();
        producer.join();
        return got;
      },
      unpinned(2));
  EXPECT_EQ(v, 5);
}

TEST(Group, ALoneLoopWaitingOnAGroupIsNotDeadlocked) {
  // The group's threads are fiberloop's own, but they will end the wait.
  const int v = fiberloop::run([] {
    LoopGroup group(unpinned(2));
    auto far = group.spawn_on(1, [] {
      this_fiber::sleep_for(50ms);
      return 9;
    });
    return far.join();  // parks this lone loop's fiber on the group's
  });
  EXPECT_EQ(v, 9);
}

TEST(Group, CallbacksOnTwoLoopsSharingEachOthersPrimitivesAtOnceDoNotHang) {
  // A loop's callback (not a fiber) that uses another loop's primitive waits
  // for that loop to share it, and meanwhile answers its own queue: two
  // loops asking each other at the same moment both get through.
  LoopGroup group(unpinned(2));
  for (int round = 0; round < 20; ++round) {
    Event on0, on1;
    // Each Event is made local to its loop by a first use there.
    group.spawn_on(0, [&] { (void)on0.wait_for(0ms); }).join();
    group.spawn_on(1, [&] { (void)on1.wait_for(0ms); }).join();
    std::atomic<int> go{0};
    auto a = group.spawn_on(0, [&] {
      Loop::current()->call_soon([&] {
        ++go;
        while (go < 2) {
        }
        on1.set();  // loop 1's, from loop 0's callback
      });
      on0.wait();
    });
    auto b = group.spawn_on(1, [&] {
      Loop::current()->call_soon([&] {
        ++go;
        while (go < 2) {
        }
        on0.set();
      });
      on1.wait();
    });
    a.join();
    b.join();
  }
}

TEST(Group, AStreamMovesToAFiberOfAnotherLoop) {
  LoopGroup group(unpinned(2));
  Channel<TcpStream> handoff(1);
  group.run([&] {
    TcpListener listener = TcpListener::bind(SocketAddress::from_ip("127.0.0.1", 0));
    auto server = group.spawn_on(1, [&] {
      TcpStream s = *handoff.recv();  // accepted on loop 0, served on loop 1
      char buf[16];
      const std::size_t n = s.read(buf);  // parks on loop 1: no data yet
      s.write_all({buf, n});
      return Loop::current()->index();
    });
    TcpStream client = TcpStream::connect(listener.local_address());
    handoff.send(listener.accept());
    this_fiber::sleep_for(5ms);  // the server parks in read() first
    client.write_all("ping");
    char back[16];
    const std::size_t n = client.read(back);
    EXPECT_EQ(std::string(back, n), "ping");
    EXPECT_EQ(server.join(), 1u);
  });
}

// A stream read on one loop is written from another: a write that need not
// wait makes its syscall and leaves the stream where it is (it used to move
// it first, which the reader's loop refused with logic_error). The same for
// a UDP socket receiving on one loop and sending from the other.
TEST(Group, AStreamReadOnOneLoopIsWrittenFromAnother) {
  LoopGroup group(unpinned(2));
  group.run([&] {
    auto [server, client] = connected_pair();
    auto reader = spawn([&] {
      char buf[16];
      const std::size_t n = server.read(buf);  // parks here, on loop 0
      return std::string(buf, n);
    });
    this_fiber::sleep_for(5ms);
    group.spawn_on(1, [&] { server.write_all("from loop 1"); }).join();
    char back[32];
    std::size_t got = 0;
    while (got < 11) got += client.read({back + got, sizeof back - got});
    EXPECT_EQ(std::string(back, got), "from loop 1");
    client.write_all("to loop 0");
    EXPECT_EQ(reader.join(), "to loop 0");

    UdpSocket receiver = UdpSocket::bind(SocketAddress::from_ip("127.0.0.1", 0));
    UdpSocket peer = UdpSocket::bind(SocketAddress::from_ip("127.0.0.1", 0));
    auto receiving = spawn([&] {
      char buf[16];
      auto [n, from] = receiver.recv_from(buf);  // parks here, on loop 0
      return std::string(buf, n);
    });
    this_fiber::sleep_for(5ms);
    group.spawn_on(1, [&] { receiver.send_to(std::string_view("hello"), peer.local_address()); })
        .join();
    char datagram[16];
    auto [n, from] = peer.recv_from(datagram);
    EXPECT_EQ(std::string(datagram, n), "hello");
    EXPECT_EQ(from, receiver.local_address());
    peer.send_to(std::string_view("back"), receiver.local_address());
    EXPECT_EQ(receiving.join(), "back");
  });
}

// A socket closed on its own loop while a fiber of another loop sends on
// it: each send goes out on that socket or throws EBADF, and none is made on
// whatever reuses the number (a pipe opened right after the close, where a
// send would fail with ENOTSOCK): the close waits out a call in flight from
// another thread, as Go's poll.FD does. (Before, the two raced on the fd
// under TSan.)
TEST(Group, ASocketClosedWhileAnotherLoopSendsOnItIsNeverCalledOnAfterTheClose) {
  LoopGroup group(unpinned(2));
  group.run([&] {
    UdpSocket sink = UdpSocket::bind(SocketAddress::from_ip("127.0.0.1", 0));
    const SocketAddress to = sink.local_address();
    for (int round = 0; round < 100; ++round) {
      UdpSocket sender = UdpSocket::bind(SocketAddress::from_ip("127.0.0.1", 0));
      std::atomic<bool> sending_now{false};
      auto sending = group.spawn_on(1, [&]() -> std::string {
        for (;;) {
          try {
            sender.send_to(std::string_view("x"), to);
            sending_now = true;
            this_fiber::yield();  // (loop 1 stays responsive to a close sent to it)
          } catch (const std::system_error& e) {
            return e.code().value() == EBADF ? "EBADF" : e.what();
          }
        }
      });
      while (!sending_now) this_fiber::yield();
      sender.close();
      int decoy[2];
      ASSERT_EQ(::pipe2(decoy, O_CLOEXEC), 0);  // takes the lowest free number: the closed one
      EXPECT_EQ(with_timeout(10s, [&] { return sending.join(); }), "EBADF");
      ::close(decoy[0]);
      ::close(decoy[1]);
    }
  });
}

// A close from a plain thread racing a move of the stream to another loop
// (a read there that must wait): the close reaches the stream wherever it
// is by then, and the reader wakes with EBADF or finds it closed, never
// waits forever. (Before, a close posted to the old loop ran there after the
// move, took the socket for orphaned, closed the fd under the new loop's
// registration and left its reader parked; under TSan the two raced on the
// stream's loop.)
TEST(Group, ACloseFromAnotherThreadFollowsAStreamThatMovesMeanwhile) {
  LoopGroup group(unpinned(2));
  group.run([&] {
    for (int round = 0; round < 200; ++round) {
      auto [server, client] = connected_pair();
      auto reader = group.spawn_on(1, [&]() -> std::string {
        char buf[8];
        try {
          (void)server.read(buf);  // nothing comes: it must wait, which moves the stream
          return "read returned";
        } catch (const std::system_error& e) {
          return e.code().value() == EBADF ? "EBADF" : e.what();
        }
      });
      run_blocking([&, round] {  // a worker: a thread without a loop
        for (int i = 0; i < round % 20; ++i) std::this_thread::yield();
        server.close();
      });
      EXPECT_EQ(with_timeout(5s, [&] { return reader.join(); }), "EBADF") << "round " << round;
    }
  });
}

// Two loops' fibers wait to read one stream at once, so both move it: one
// gets it and reads, the other is refused with logic_error (one reader at a
// time), never both registered at once. (Before, a second move
// could take the stream while the first was still on its way, and the
// first reader then parked on the other loop's scheduler.)
TEST(Group, TwoLoopsMovingOneStreamAtOnceGiveItToOneReaderAndRefuseTheOther) {
  LoopGroup group(unpinned(3));
  group.run([&] {
    for (int round = 0; round < 50; ++round) {
      auto [server, client] = connected_pair();
      const auto read_there = [&](std::size_t loop) {
        return group.spawn_on(loop, [&]() -> std::string {
          char buf[8];
          try {
            // (The wait itself: two Stream::read()s at once would also race
            // on the stream's deadline bookkeeping before being refused.)
            server.wait_readable();
            return std::string(buf, server.read(buf));
          } catch (const std::logic_error&) {
            return "refused";
          } catch (const std::system_error& e) {
            return e.code().value() == EBADF ? "EBADF" : e.what();
          }
        });
      };
      auto first = read_there(1);
      auto second = read_there(2);
      this_fiber::sleep_for(5ms);  // both have tried, and one waits
      client.write_all("x");
      // The refused one returns at once and the other reads "x". (On a slow
      // machine the second may not have tried before "x" came: it reads it
      // without waiting, and the first, still waiting, gets a "y".)
      for (int i = 0; i < 5000 && !first.done() && !second.done(); ++i) this_fiber::sleep_for(1ms);
      for (int i = 0; i < 100 && !(first.done() && second.done()); ++i) this_fiber::sleep_for(1ms);
      if (!(first.done() && second.done())) client.write_all("y");
      std::vector<std::string> got = {with_timeout(5s, [&] { return first.join(); }),
                                      with_timeout(5s, [&] { return second.join(); })};
      std::sort(got.begin(), got.end());
      EXPECT_TRUE(got == (std::vector<std::string>{"refused", "x"}) ||
                  got == (std::vector<std::string>{"x", "y"}))
          << "round " << round << ": " << got[0] << ", " << got[1];
    }
  });
}

// Go's SetDeadline from another goroutine, across loops: a deadline set on
// loop 1 reaches a read parked on loop 0 (the deadline's timer is loop 0's;
// setting it from loop 1's thread raced loop 0's timer heap under TSan).
TEST(Group, AReadDeadlineSetFromAnotherLoopWakesTheReader) {
  LoopGroup group(unpinned(2));
  group.run([&] {
    auto [server, client] = connected_pair();
    auto reader = spawn([&] {
      char buf[8];
      EXPECT_THROW((void)server.read(buf), TimeoutError);
    });
    this_fiber::sleep_for(5ms);  // the reader parks
    group
        .spawn_on(1,
                  [&] {
                    server.write_all("w");  // a write from loop 1 leaves the read loop 0's
                    server.set_read_deadline(Clock::now());
                  })
        .join();
    with_timeout(5s, [&] { reader.join(); });
    EXPECT_THROW((void)server.read(std::span<char>()), TimeoutError) << "the deadline stays";
    server.set_read_deadline(TimePoint::max());
    client.write_all("x");
    char buf[1];
    server.read_exact(buf);
  });
}

TEST(Group, AStreamClosedOnAnotherLoopWakesItsWaiterWithEbadf) {
  LoopGroup group(unpinned(2));
  group.run([&] {
    TcpListener listener = TcpListener::bind(SocketAddress::from_ip("127.0.0.1", 0));
    TcpStream client = TcpStream::connect(listener.local_address());
    TcpStream accepted = listener.accept();
    auto reader = spawn([&] {
      char buf[8];
      EXPECT_THROW((void)accepted.read(buf), std::system_error);
    });
    this_fiber::sleep_for(5ms);                           // the reader parks
    group.spawn_on(1, [&] { accepted.close(); }).join();  // closed from loop 1
    reader.join();
  });
}

// ---- introspection --------------------------------------------------------------

TEST(Group, DumpAndStatsCoverEveryLoop) {
  LoopGroup group(unpinned(2));
  group.run([&group] {
    auto sleeper =
        group.spawn_on(1, SpawnOptions{.name = "sleeper-on-1"}, [] { this_fiber::sleep_for(1h); });
    this_fiber::sleep_for(2ms);
    std::ostringstream out;
    group.dump(out);
    EXPECT_NE(out.str().find("== loop 0 of 2"), std::string::npos) << out.str();
    EXPECT_NE(out.str().find("== loop 1 of 2"), std::string::npos) << out.str();
    EXPECT_NE(out.str().find("'sleeper-on-1'"), std::string::npos) << out.str();
    const std::vector<LoopStats> each = group.stats_per_loop();
    ASSERT_EQ(each.size(), 2u);
    EXPECT_GE(each[1].fibers_alive, 1u);
    EXPECT_GT(group.stats().fibers_created, each[0].fibers_created + each[1].fibers_created - 1);
    sleeper.cancel();
    EXPECT_THROW(sleeper.join(), Cancelled);
  });
}

}  // namespace
}  // namespace fiberloop
