// TCP over loopback: echo, many clients, big transfers, errors, closing,
// timeouts, cancellation, fd limits.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;
using Tcp = LoopTest;

using testing::any_port;

// A server that reverses each message.
void reverse_echo(TcpStream conn) {
  char buf[1024];
  while (std::size_t n = conn.read(buf)) {
    std::string msg(buf, n);
    std::reverse(msg.begin(), msg.end());
    conn.write_all(msg);
  }
}

TEST_F(Tcp, ReverseEcho) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    auto server = spawn([&] { reverse_echo(listener.accept()); });
    auto client = TcpStream::connect(listener.local_address());
    client.write_all("fiberloop");
    char buf[64];
    client.read_exact({buf, 9});
    EXPECT_EQ(std::string(buf, 9), "poolrebif");
    client.shutdown_write();
    server.join();  // the server saw end of stream
    EXPECT_EQ(client.read(buf), 0u);
  });
}

TEST_F(Tcp, ThousandClientsTenRoundTripsEach) {
  constexpr int kClients = 1000, kTrips = 10;
  int completed = 0;
  run([&] {
    auto listener = TcpListener::bind(any_port());
    const SocketAddress addr = listener.local_address();
    auto acceptor = spawn([&] {
      for (int i = 0; i < kClients; ++i)
        spawn([conn = listener.accept()]() mutable { reverse_echo(std::move(conn)); });
    });
    std::vector<Task<void>> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.push_back(spawn([&, c] {
        auto s = TcpStream::connect(addr);
        for (int t = 0; t < kTrips; ++t) {
          const std::string msg = std::to_string(c) + "/" + std::to_string(t);
          s.write_all(msg);
          std::string got(msg.size(), '\0');
          s.read_exact(got);
          EXPECT_EQ(std::string(got.rbegin(), got.rend()), msg);
        }
        ++completed;
      }));
    }
    for (auto& c : clients) c.join();
    acceptor.join();
  });
  EXPECT_EQ(completed, kClients);
}

TEST_F(Tcp, SixteenMiBThroughPartialReadsAndWrites) {
  constexpr std::size_t kSize = 16 << 20;
  std::string data(kSize, '\0');
  for (std::size_t i = 0; i < kSize; ++i) data[i] = static_cast<char>(i * 131 + (i >> 13));
  run([&] {
    auto listener = TcpListener::bind(any_port());
    auto writer = spawn([&] {
      auto conn = listener.accept();
      conn.write_all(data);  // far more than a socket buffer: many partial writes
      conn.close();
    });
    auto client = TcpStream::connect(listener.local_address());
    std::string got;
    char buf[65536];
    std::size_t reads = 0;
    while (std::size_t n = client.read(buf)) {
      got.append(buf, n);
      ++reads;
    }
    writer.join();
    EXPECT_EQ(got.size(), kSize);
    EXPECT_TRUE(got == data);
    EXPECT_GT(reads, 1u);
  });
}

TEST_F(Tcp, ConnectRefusedNamesTheAddress) {
  run([] {
    // A port nobody listens on: bind one, note it, close it.
    SocketAddress addr;
    {
      auto l = TcpListener::bind(any_port());
      addr = l.local_address();
    }
    try {
      TcpStream::connect(addr);
      ADD_FAILURE() << "connected to a closed port";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECONNREFUSED);
      EXPECT_NE(std::string(e.what()).find("connect " + addr.to_string()), std::string::npos)
          << e.what();
    }
  });
}

TEST_F(Tcp, BindErrorsNameTheAddress) {
  run([] {
    auto l = TcpListener::bind(any_port());
    try {
      TcpListener::bind(l.local_address());  // in use (no SO_REUSEPORT)
      ADD_FAILURE() << "bound twice";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EADDRINUSE);
      EXPECT_NE(std::string(e.what()).find(l.local_address().to_string()), std::string::npos);
    }
  });
}

TEST_F(Tcp, ReusePortAllowsTwoListeners) {
  run([] {
    TcpListener::Options opts;
    opts.reuse_port = true;
    auto a = TcpListener::bind(any_port(), opts);
    auto b = TcpListener::bind(a.local_address(), opts);
    EXPECT_EQ(a.local_address(), b.local_address());
  });
}

TEST_F(Tcp, ClosingAnFdWakesTheFiberParkedOnIt) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    auto server_side = spawn([&] { return listener.accept(); });
    auto client = TcpStream::connect(listener.local_address());
    TcpStream conn = server_side.join();
    auto reader = spawn([&] {
      char buf[16];
      conn.read(buf);  // parks: nothing was sent
    });
    this_fiber::yield();
    const std::string fd = std::to_string(conn.fd());
    conn.close();
    try {
      reader.join();
      ADD_FAILURE() << "the parked reader was not woken";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
      // The fd it waited on, named (it said "read: the socket was closed...").
      EXPECT_NE(
          std::string(e.what()).find("read fd " + fd + ": the socket was closed while waiting"),
          std::string::npos)
          << e.what();
    }
  });
}

TEST_F(Tcp, DestroyingTheSocketWakesTheParkedFiberSafely) {
  // The reader wakes after the TcpStream object itself is gone: it must not
  // touch it (no use-after-free; ASan checks this under --config=asan).
  run([] {
    auto listener = TcpListener::bind(any_port());
    auto server_side = spawn([&] { return listener.accept(); });
    auto client = TcpStream::connect(listener.local_address());
    auto conn = std::make_unique<TcpStream>(server_side.join());
    auto reader = spawn([&] {
      char buf[16];
      conn->read(buf);
    });
    this_fiber::yield();
    conn.reset();
    EXPECT_THROW(reader.join(), std::system_error);
  });
}

TEST_F(Tcp, DestroyingTheSocketWakesAReaderUnderADeadlineSafely) {
  // The same with a read deadline, whose scope the stream points at, and
  // with the deadline moved to now just before the stream goes.
  for (const bool expire_first : {false, true}) {
    run([expire_first] {
      auto listener = TcpListener::bind(any_port());
      auto server_side = spawn([&] { return listener.accept(); });
      auto client = TcpStream::connect(listener.local_address());
      auto conn = std::make_unique<TcpStream>(server_side.join());
      conn->set_read_deadline(Clock::now() + std::chrono::seconds(10));
      auto reader = spawn([&] {
        char buf[16];
        conn->read(buf);
      });
      this_fiber::yield();
      if (expire_first) conn->set_read_deadline(Clock::now());  // the reader is made ready
      conn.reset();
      EXPECT_ANY_THROW(reader.join());  // EBADF, or the deadline: never a stale stream
    });
  }
}

TEST_F(Tcp, AReusedFdNumberNeverWakesTheWrongFiber) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    auto first = TcpStream::connect(listener.local_address());
    auto first_server = listener.accept();
    const int fd = first_server.fd();
    first_server.close();
    // The next connection very likely gets the same fd number.
    auto second = TcpStream::connect(listener.local_address());
    auto second_server = listener.accept();
    bool woke = false;
    auto reader = spawn([&] {
      char buf[8];
      second_server.read(buf);
      woke = true;
    });
    this_fiber::yield();
    first.write_all("stale");  // traffic for the old connection: no wake-up
    first.close();
    this_fiber::sleep_for(10ms);
    EXPECT_FALSE(woke) << "fd " << fd << " reused: a stale event woke the new reader";
    second.write_all("x");
    reader.join();
    EXPECT_TRUE(woke);
  });
}

TEST_F(Tcp, PeerResetDuringALargeWriteIsAnErrorNotACrash) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    auto client = TcpStream::connect(listener.local_address());
    auto server = listener.accept();
    auto writer = spawn([&] {
      std::string big(8 << 20, 'x');
      for (;;) server.write_all(big);  // until the peer resets
    });
    this_fiber::sleep_for(5ms);
    linger l{1, 0};  // close with RST
    ::setsockopt(client.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    client.close();
    try {
      writer.join();
      ADD_FAILURE() << "no error";
    } catch (const std::system_error& e) {
      EXPECT_TRUE(e.code().value() == ECONNRESET || e.code().value() == EPIPE) << e.what();
      EXPECT_NE(std::string(e.what()).find("write fd"), std::string::npos) << e.what();
    }
  });
}

TEST_F(Tcp, ReadTimeoutThroughWithTimeout) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    auto client = TcpStream::connect(listener.local_address());
    auto server = listener.accept();
    char buf[8];
    EXPECT_THROW(with_timeout(20ms, [&] { return client.read(buf); }), TimeoutError);
    server.write_all("ok");  // the stream is still usable
    EXPECT_EQ(client.read(buf), 2u);
  });
}

TEST_F(Tcp, CancellingAFiberParkedInAccept) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    auto acceptor = spawn([&] { return listener.accept(); });
    this_fiber::yield();
    acceptor.cancel();
    EXPECT_THROW(acceptor.join(), Cancelled);
    // The listener still works, and the slot was freed.
    auto client = TcpStream::connect(listener.local_address());
    auto conn = listener.accept();
    EXPECT_TRUE(conn.is_open());
  });
}

TEST_F(Tcp, TwoReadersAtOnceIsALogicError) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    auto client = TcpStream::connect(listener.local_address());
    auto server = listener.accept();
    auto first = spawn([&] {
      char buf[4];
      return server.read(buf);
    });
    this_fiber::yield();
    char buf[4];
    EXPECT_THROW(server.read(buf), std::logic_error);
    client.write_all("a");
    EXPECT_EQ(first.join(), 1u);
  });
}

TEST_F(Tcp, AcceptAtTheFdLimitReportsEmfileAndDoesNotSpin) {
  rlimit saved{};
  ::getrlimit(RLIMIT_NOFILE, &saved);
  run([&] {
    auto listener = TcpListener::bind(any_port());
    std::vector<TcpStream> clients;
    for (int i = 0; i < 4; ++i) clients.push_back(TcpStream::connect(listener.local_address()));
    // Leave no fd for accept(): the lowest free fd must be above the limit.
    int probe = ::dup(0);
    rlimit tight = saved;
    tight.rlim_cur = static_cast<rlim_t>(probe);
    ::close(probe);
    ::setrlimit(RLIMIT_NOFILE, &tight);
    try {
      listener.accept();
      ADD_FAILURE() << "accepted past the fd limit";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EMFILE) << e.what();
      EXPECT_NE(std::string(e.what()).find("accept fd"), std::string::npos) << e.what();
    }
    ::setrlimit(RLIMIT_NOFILE, &saved);
    auto conn = listener.accept();  // works again
    EXPECT_TRUE(conn.is_open());
  });
}

TEST_F(Tcp, ConnectByNameAndResolveLocalhost) {
  run([] {
    auto addrs = resolve("localhost", 80);
    ASSERT_FALSE(addrs.empty());
    for (auto& a : addrs) EXPECT_TRUE(a.is_ipv4() || a.is_ipv6()) << a.to_string();
    try {
      resolve("no-such-host.invalid", 80);
      ADD_FAILURE() << "resolved an invalid name";
    } catch (const std::system_error& e) {
      EXPECT_NE(std::string(e.what()).find("resolve no-such-host.invalid"), std::string::npos)
          << e.what();
    }
    auto listener = TcpListener::bind(any_port());
    auto client = TcpStream::connect("127.0.0.1", listener.local_address().port());
    EXPECT_EQ(client.peer_address(), listener.local_address());
  });
}

TEST_F(Tcp, Ipv6Loopback) {
  run([] {
    TcpListener listener;
    try {
      listener = TcpListener::bind(SocketAddress::parse("[::1]:0"));
    } catch (const std::system_error& e) {
      GTEST_FAIL() << "no IPv6 loopback on this machine: " << e.what();
    }
    auto server = spawn([&] { reverse_echo(listener.accept()); });
    auto client = TcpStream::connect(listener.local_address());
    client.write_all("v6");
    char buf[2];
    client.read_exact(buf);
    EXPECT_EQ(std::string(buf, 2), "6v");
    client.close();
    server.join();
  });
}

TEST(TcpScale, TenThousandConnectionsHeldOpen) {
  constexpr int kConns = 10'000;
  int port_pipe[2];
  ASSERT_EQ(::pipe(port_pipe), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // the server: accepts them all and holds them
    ::close(port_pipe[0]);
    int rc = fiberloop::run([&] {
      auto listener = TcpListener::bind(any_port(), 4096);
      const std::uint16_t port = listener.local_address().port();
      if (::write(port_pipe[1], &port, sizeof port) != sizeof port) return 1;
      std::vector<TcpStream> held;
      held.reserve(kConns);
      for (int i = 0; i < kConns; ++i) held.push_back(listener.accept());
      // Wait until the client says it is done (it closes its end).
      char c;
      held.back().read({&c, 1});
      return 0;
    });
    ::_exit(rc);
  }
  ::close(port_pipe[1]);
  std::uint16_t port = 0;
  ASSERT_EQ(::read(port_pipe[0], &port, sizeof port), static_cast<ssize_t>(sizeof port));
  ::close(port_pipe[0]);
  std::size_t open = 0;
  fiberloop::run([&] {
    const auto addr = SocketAddress::from_ip("127.0.0.1", port);
    std::vector<TcpStream> conns;
    conns.reserve(kConns);
    for (int i = 0; i < kConns; ++i) conns.push_back(TcpStream::connect(addr));
    this_fiber::sleep_for(50ms);
    for (auto& c : conns) open += c.is_open();
  });  // closing them all tells the server to finish
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "server status " << status;
  EXPECT_EQ(open, static_cast<std::size_t>(kConns));
}

}  // namespace
}  // namespace fiberloop
