// Several fibers of one loop accepting on one listener (Go's concurrent
// Accept): each connection goes to exactly one of them, in turn; a queued
// acceptor can be cancelled or timed out; closing the listener wakes them all.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/group_helpers.h"
#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;
using Acceptors = LoopTest;

using testing::any_port;
using testing::await_parked;

// accept() on `listener`: 0 if it returned a connection, else the errno it
// threw.
int accept_errno(TcpListener& listener) {
  try {
    (void)listener.accept();
    return 0;
  } catch (const std::system_error& e) {
    return e.code().value();
  }
}

TEST_F(Acceptors, FourFibersShareTheConnectionsOfOneListener) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    constexpr int kClients = 40;
    std::vector<int> served_by;  // the acceptor of each connection, in order
    std::set<std::string> greetings;
    std::vector<Task<void>> acceptors;
    for (int a = 0; a < 4; ++a) {
      acceptors.push_back(spawn([&, a] {
        for (;;) {
          TcpStream conn = listener.accept();
          char buf[16];
          const std::size_t n = conn.read(buf);
          greetings.emplace(buf, n);
          served_by.push_back(a);
          conn.write_all("ok");
        }
      }));
    }
    this_fiber::yield();  // all four wait: one in accept, three queued behind it
    std::vector<Task<std::string>> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.push_back(spawn([&, c] {
        auto conn = TcpStream::connect(listener.local_address());
        conn.write_all("client " + std::to_string(c));
        char buf[4];
        return std::string(buf, conn.read(buf));
      }));
    }
    for (auto& c : clients) EXPECT_EQ(with_timeout(10s, [&] { return c.join(); }), "ok");
    EXPECT_EQ(greetings.size(), static_cast<std::size_t>(kClients));
    // Every acceptor had its turns (a queue, in order: none starves).
    for (int a = 0; a < 4; ++a) {
      EXPECT_GT(std::count(served_by.begin(), served_by.end(), a), 0) << "acceptor " << a;
    }
    for (auto& a : acceptors) a.cancel();
    for (auto& a : acceptors) EXPECT_THROW(a.join(), Cancelled);
  });
}

TEST_F(Acceptors, AQueuedAcceptorCancelledLeavesTheQueueAndTheNextGetsItsTurn) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    auto first = spawn([&] { return listener.accept().is_open(); });
    auto second = spawn([&] { return listener.accept().is_open(); });
    auto third = spawn([&] { return listener.accept().is_open(); });
    this_fiber::yield();
    second.cancel();
    EXPECT_THROW(second.join(), Cancelled);
    auto a = TcpStream::connect(listener.local_address());
    auto b = TcpStream::connect(listener.local_address());
    EXPECT_TRUE(with_timeout(5s, [&] { return first.join(); }));
    EXPECT_TRUE(with_timeout(5s, [&] { return third.join(); }));
  });
}

TEST_F(Acceptors, AQueuedAcceptorTimesOut) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    auto holder = spawn([&] { return listener.accept().is_open(); });
    this_fiber::yield();
    EXPECT_THROW(with_timeout(10ms, [&] { return listener.accept(); }), TimeoutError);
    auto a = TcpStream::connect(listener.local_address());
    EXPECT_TRUE(with_timeout(5s, [&] { return holder.join(); }));
  });
}

TEST_F(Acceptors, AnAcceptorHandedItsTurnAndCancelledPassesItOn) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    Task<bool> second;
    auto first = spawn([&] {
      (void)listener.accept();  // its turn ends here: the second is handed it, and
      second.cancel();          // cancelled before it runs
      return true;
    });
    second = spawn([&] { return listener.accept().is_open(); });
    auto third = spawn([&] { return listener.accept().is_open(); });
    this_fiber::yield();
    auto a = TcpStream::connect(listener.local_address());
    EXPECT_TRUE(with_timeout(5s, [&] { return first.join(); }));
    EXPECT_THROW(second.join(), Cancelled);
    auto b = TcpStream::connect(listener.local_address());
    EXPECT_TRUE(with_timeout(5s, [&] { return third.join(); }));
  });
}

TEST_F(Acceptors, DestroyingTheListenerWakesEveryAcceptorWithEbadf) {
  run([] {
    auto listener = std::make_unique<TcpListener>(TcpListener::bind(any_port()));
    std::vector<Task<int>> acceptors;
    for (int a = 0; a < 3; ++a) {
      acceptors.push_back(spawn([&] { return accept_errno(*listener); }));
    }
    this_fiber::yield();
    listener.reset();  // the holder and both queued fibers wake; none touches it again
    for (auto& a : acceptors) EXPECT_EQ(with_timeout(5s, [&] { return a.join(); }), EBADF);
  });
}

// The holder's accept hands the turn to the next acceptor, then destroys
// the listener before that one runs: it wakes with EBADF and never touches
// the handle (ASan: a use after free before).
TEST_F(Acceptors, AnAcceptorHandedItsTurnAsTheListenerIsDestroyedGetsEbadf) {
  run([] {
    auto listener = std::make_unique<TcpListener>(TcpListener::bind(any_port()));
    const SocketAddress address = listener->local_address();
    auto first = spawn([&] {
      (void)listener->accept();  // hands the turn on as it returns
      listener.reset();
      return true;
    });
    auto second = spawn([&] { return accept_errno(*listener); });
    this_fiber::yield();
    auto client = TcpStream::connect(address);
    EXPECT_TRUE(with_timeout(5s, [&] { return first.join(); }));
    EXPECT_EQ(with_timeout(5s, [&] { return second.join(); }), EBADF);
  });
}

// A listener moved (C++) while an acceptor queues on it: the queued fiber
// accepts on the listener it was given, wherever its object now lives.
TEST_F(Acceptors, AListenerMovedWhileAnAcceptorQueuesStillServesIt) {
  run([] {
    TcpListener original = TcpListener::bind(any_port());
    auto first = spawn([&] { return original.accept().is_open(); });
    auto second = spawn([&] { return original.accept().is_open(); });
    this_fiber::yield();
    TcpListener moved = std::move(original);
    auto a = TcpStream::connect(moved.local_address());
    auto b = TcpStream::connect(moved.local_address());
    EXPECT_TRUE(with_timeout(5s, [&] { return first.join(); }));
    EXPECT_TRUE(with_timeout(5s, [&] { return second.join(); }));
  });
}

// Two fibers of another loop accept on a listener made on loop 0: the first
// moves it to their loop, the second queues behind it there (before, it
// found the first in the slot without a turn and got std::logic_error).
TEST(AcceptorsAcrossLoops, TwoFibersOfAnotherLoopTakeTurnsOnAListenerTheyMoved) {
  GroupOptions options;
  options.loops = 2;
  options.pin_threads = false;
  LoopGroup group(options);
  group.run([&] {
    TcpListener listener = TcpListener::bind(any_port());
    auto first = group.spawn_on(1, [&] { return listener.accept().is_open(); });
    auto second = group.spawn_on(1, [&] { return listener.accept().is_open(); });
    await_parked(group, 1, "reading fd");              // one waits in accept on loop 1,
    await_parked(group, 1, "waiting its turn on fd");  // and the other for its turn there
    auto a = TcpStream::connect(listener.local_address());
    auto b = TcpStream::connect(listener.local_address());
    EXPECT_TRUE(with_timeout(5s, [&] { return first.join(); }));
    EXPECT_TRUE(with_timeout(5s, [&] { return second.join(); }));
  });
}

}  // namespace
}  // namespace fiberloop
