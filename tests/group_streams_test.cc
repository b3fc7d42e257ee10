// Streams across the loops of a LoopGroup: a stream handed to another loop,
// read on one and written from another, closed on one while another loop
// calls on it or moves it, moved by two loops at once, and deadlines set
// from another loop.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "fiberloop.h"
#include "tests/group_helpers.h"
#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::await_fd_waiter;
using testing::block_until_parked;
using testing::connected_pair;
using testing::open_fds;
using testing::unpinned;

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
    await_fd_waiter(group, 1);  // the server parks in read() first
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

// A reader and a writer of one loop both move a stream of another loop,
// whose thread is busy, so both hand-overs wait there together: the first
// moves the stream, the second finds it already on its own loop, and both
// go on (a reader and a writer at once are allowed). (Before, the second
// asked its own loop for the stream and was refused with logic_error.)
TEST(Group, AReaderAndAWriterMovingOneStreamTogetherBothGetIt) {
  LoopGroup group(unpinned(2));
  group.run([&] {
    const std::string big(8 << 20, 'b');
    for (int round = 0; round < 10; ++round) {
      auto [server, client] = connected_pair();
      auto reader = group.spawn_on(1, [&]() -> std::string {
        char buf[8];
        return std::string(buf, server.read(buf));
      });
      auto writer = group.spawn_on(1, [&]() -> std::string {
        server.write_all(big);  // more than the socket holds: it waits, and moves it
        return "wrote";
      });
      // This loop's thread busy until both hand-overs wait on it.
      block_until_parked(group, 1, "waiting for another loop", 2);
      client.write_all("r");
      std::vector<char> buf(64 << 10);
      std::size_t got = 0;
      with_timeout(10s, [&] {
        while (got < big.size() && !writer.done()) got += client.read(buf);
      });
      EXPECT_EQ(with_timeout(5s, [&] { return reader.join(); }), "r") << "round " << round;
      EXPECT_EQ(with_timeout(5s, [&] { return writer.join(); }), "wrote") << "round " << round;
    }
  });
}

// A stream closed from a plain thread just as its loop closes: the close
// runs on the loop if it asked before the loop's last drain of its queue,
// else on the caller's thread once the loop is gone; it never posts to a
// loop past that drain (the caller waited forever) or gone (a use after
// free). Repeated to meet the loop at every point of its shutdown.
TEST(Group, AStreamClosedFromAnotherThreadAsItsLoopClosesIsClosedOnce) {
  const std::size_t fds_before = open_fds().size();
  for (int round = 0; round < 400; ++round) {
    std::optional<TcpStream> kept;
    std::atomic<bool> made{false};
    std::atomic<bool> closed{false};
    std::thread closer([&] {
      while (!made.load(std::memory_order_acquire)) std::this_thread::yield();
      kept->close();
      closed.store(true, std::memory_order_release);
    });
    fiberloop::run([&] {
      auto [server, client] = connected_pair();
      kept.emplace(std::move(server));
      made.store(true, std::memory_order_release);
    });  // the loop closes while `closer` closes the stream
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (!closed.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(1ms);
    }
    if (!closed.load(std::memory_order_acquire)) {
      ADD_FAILURE() << "round " << round << ": close() never returned";
      closer.detach();  // (the process ends with the test's failure)
      return;
    }
    closer.join();
    ASSERT_EQ(kept->fd(), -1) << "round " << round;
  }
  EXPECT_EQ(open_fds().size(), fds_before);
}

// A stream whose loop is gone, taken by a fiber of another loop (its read
// waits, and moves it there) while a plain thread closes it: one of the two
// claims it first. Either the close runs on the new loop and wakes the
// reader, or the reader finds it closing; the reader ends with EBADF every
// time, never parked on a closed fd, and every fd is closed once.
TEST(Group, AnOrphanedStreamClosedWhileAnotherLoopTakesItIsClosedOnce) {
  const std::size_t fds_before = open_fds().size();
  {
    LoopGroup group(unpinned(1));
    for (int round = 0; round < 200; ++round) {
      std::optional<TcpStream> orphan;
      std::optional<TcpStream> peer;
      fiberloop::run([&] {
        auto [a, b] = connected_pair();
        orphan.emplace(std::move(a));
        peer.emplace(std::move(b));
      });  // their loop is gone
      std::atomic<bool> go{false};
      auto reader = group.spawn_on(0, [&]() -> int {
        go.store(true, std::memory_order_release);
        try {
          char buf[4];
          (void)with_timeout(5s, [&] { return orphan->read(buf); });
          return 0;
        } catch (const std::system_error& e) {
          return e.code().value();
        }
      });
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      orphan->close();
      EXPECT_EQ(reader.join(), EBADF) << "round " << round;
    }
  }
  EXPECT_EQ(open_fds().size(), fds_before);
}

// A second reader of a stream on another loop, while the first waits, is
// refused before it touches the stream's deadline bookkeeping (which each
// reader used to link itself into from its own thread, so that an unlucky
// order of the two unwinds left the stream pointing at a dead reader's
// timer); the first reader and later deadlines are unaffected.
TEST(Group, ASecondReaderOnAnotherLoopIsRefusedAndDeadlinesStillReachTheFirst) {
  LoopGroup group(unpinned(2));
  group.run([&] {
    auto [server, client] = connected_pair();
    auto first = group.spawn_on(1, [&]() -> std::string {
      char buf[8];
      return std::string(buf, server.read(buf));
    });
    await_fd_waiter(group, 1);  // parked in its read
    char buf[8];
    try {
      (void)server.read(buf);
      ADD_FAILURE() << "a second reader was let in";
    } catch (const std::logic_error& e) {
      EXPECT_NE(std::string(e.what()).find("another fiber is already reading"), std::string::npos)
          << e.what();
    }
    client.write_all("one");
    EXPECT_EQ(with_timeout(5s, [&] { return first.join(); }), "one");
    // The deadline bookkeeping is free again: a deadline reaches the next read.
    server.set_read_deadline(Clock::now() + 20ms);
    EXPECT_THROW((void)with_timeout(5s, [&] { return server.read(buf); }), TimeoutError);
  });
}

}  // namespace
}  // namespace fiberloop
