// UDP, Unix sockets, waiting on any fd, and the add_reader callback form
// (dropped by a closing loop).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;
using Fd = LoopTest;

std::string temp_socket_path(const char* tag) {
  return "/tmp/fiberloop-" + std::to_string(::getpid()) + "-" + tag + ".sock";
}

TEST_F(Fd, UdpRoundTrip) {
  run([] {
    auto server = UdpSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    auto echo = spawn([&] {
      char buf[64];
      auto [n, from] = server.recv_from(buf);
      server.send_to({buf, n}, from);
    });
    auto client = UdpSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    client.send_to(std::string_view("ping"), server.local_address());
    char buf[64];
    auto [n, from] = client.recv_from(buf);
    EXPECT_EQ(std::string(buf, n), "ping");
    EXPECT_EQ(from, server.local_address());
    echo.join();

    client.connect(server.local_address());  // connected form
    auto echo2 = spawn([&] {
      auto [m, peer] = server.recv_from(buf);
      server.send_to({buf, m}, peer);
    });
    client.send(std::string_view("pong"));
    EXPECT_EQ(client.recv(buf), 4u);
    echo2.join();
  });
}

TEST_F(Fd, UnixStreamEcho) {
  const std::string path = temp_socket_path("echo");
  ::unlink(path.c_str());
  run([&] {
    auto listener = UnixListener::bind(path);
    auto server = spawn([&] {
      auto conn = listener.accept();
      char buf[64];
      while (std::size_t n = conn.read(buf)) conn.write_all({buf, n});
    });
    auto client = UnixStream::connect(path);
    client.write_all("over a path");
    char buf[11];
    client.read_exact(buf);
    EXPECT_EQ(std::string(buf, 11), "over a path");
    client.close();
    server.join();
    EXPECT_THROW(UnixListener::bind(path), std::system_error);  // the file exists
  });
  ::unlink(path.c_str());
}

TEST_F(Fd, UnixConnectErrorNamesThePath) {
  run([] {
    try {
      UnixStream::connect("/tmp/fiberloop-no-such.sock");
      ADD_FAILURE() << "connected";
    } catch (const std::system_error& e) {
      EXPECT_NE(std::string(e.what()).find("/tmp/fiberloop-no-such.sock"), std::string::npos);
    }
  });
}

// Errors a user causes with Unix and UDP sockets say what to do: a stale
// socket file, a full backlog (a Unix connect is not queued past it), a
// send on an unconnected UDP socket, a datagram too large to send.
TEST_F(Fd, UnixAndUdpErrorsSayWhatToDo) {
  const std::string path = temp_socket_path("advice");
  ::unlink(path.c_str());
  run([&] {
    const auto what_of = [](auto call) -> std::string {
      try {
        call();
      } catch (const std::system_error& e) {
        return e.what();
      }
      return "(no exception)";
    };
    auto listener = UnixListener::bind(path, 1);  // never accepts
    std::string what = what_of([&] { UnixListener::bind(path); });
    EXPECT_NE(what.find("unlink it first"), std::string::npos) << what;
    std::vector<UnixStream> queued;
    what = what_of([&] {
      for (int i = 0; i < 16; ++i) queued.push_back(UnixStream::connect(path));
    });
    EXPECT_NE(what.find("backlog is full"), std::string::npos) << what;
    EXPECT_NE(what.find(path), std::string::npos) << what;
    auto udp = UdpSocket::bind(SocketAddress::parse("127.0.0.1:0"));
    what = what_of([&] { udp.send(std::string_view("x")); });
    EXPECT_NE(what.find("connect() the socket first, or use send_to()"), std::string::npos) << what;
    what = what_of([&] { udp.send_to(std::string(70000, 'x'), udp.local_address()); });
    EXPECT_NE(what.find("70000 bytes is more than one datagram carries"), std::string::npos)
        << what;
  });
  ::unlink(path.c_str());
}

TEST_F(Fd, AbstractUnixSocket) {
  const std::string name = "@fiberloop-test-" + std::to_string(::getpid());
  run([&] {
    auto listener = UnixListener::bind(name);
    auto server = spawn([&] { listener.accept().write_all("hi"); });
    auto client = UnixStream::connect(name);
    char buf[2];
    client.read_exact(buf);
    EXPECT_EQ(std::string(buf, 2), "hi");
    server.join();
  });
}

TEST_F(Fd, WaitReadableOnAPipe) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::string trace;
  run([&] {
    auto reader = spawn([&] {
      wait_readable(p[0]);
      char c;
      EXPECT_EQ(::read(p[0], &c, 1), 1);
      trace += c;
    });
    this_fiber::sleep_for(5ms);
    trace += "w";
    EXPECT_EQ(::write(p[1], "r", 1), 1);
    reader.join();
    wait_writable(p[1]);  // a pipe with room: at once
  });
  EXPECT_EQ(trace, "wr");
  ::close(p[0]);
  ::close(p[1]);
}

TEST_F(Fd, WaitReadableHonoursTimeoutsAndLeavesTheFdOpen) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  run([&] { EXPECT_THROW(with_timeout(10ms, [&] { wait_readable(p[0]); }), TimeoutError); });
  EXPECT_EQ(::write(p[1], "x", 1), 1);  // still open and usable
  ::close(p[0]);
  ::close(p[1]);
}

TEST_F(Fd, AddReaderCallsBackWhileReadable) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::string got;
  loop().add_reader(p[0], [&] {
    char c;
    if (::read(p[0], &c, 1) == 1) got += c;
    if (got.size() == 3) loop().remove_reader(p[0]);
  });
  EXPECT_EQ(::write(p[1], "abc", 3), 3);
  loop().run();  // ends once the reader is removed
  EXPECT_EQ(got, "abc");
  EXPECT_FALSE(loop().remove_reader(p[0]));
  bool wrote = false;
  loop().add_writer(p[1], [&] {
    wrote = true;
    loop().remove_writer(p[1]);
  });
  loop().run();
  EXPECT_TRUE(wrote);
  ::close(p[0]);
  ::close(p[1]);
}

// Two readers ready in one poll: the first to run removes the other (and
// closes its fd), so the other's callback, already queued, must not run
// (it ran on the closed fd; asyncio's remove_reader cancels the handle).
TEST_F(Fd, ARemovedReadersQueuedCallbackDoesNotRun) {
  int a[2], b[2];
  ASSERT_EQ(::pipe(a), 0);
  ASSERT_EQ(::pipe(b), 0);
  int calls = 0;
  loop().add_reader(a[0], [&] {
    ++calls;
    loop().remove_reader(a[0]);
    if (loop().remove_reader(b[0])) ::close(b[0]);
  });
  loop().add_reader(b[0], [&] {
    ++calls;
    loop().remove_reader(b[0]);
    if (loop().remove_reader(a[0])) ::close(a[0]);
  });
  EXPECT_EQ(::write(a[1], "x", 1), 1);
  EXPECT_EQ(::write(b[1], "y", 1), 1);
  loop().run();
  EXPECT_EQ(calls, 1);
  // The one still open (whose callback ran) is closed here.
  ::close(::fcntl(a[0], F_GETFD) != -1 ? a[0] : b[0]);
  ::close(a[1]);
  ::close(b[1]);
}

// A closing loop drops add_reader()'s and add_writer()'s callbacks, and
// those a cancelled fiber adds while it closes: they wake no fiber, and kept
// the loop polling for its shutdown's whole grace (100 ms; spinning, on a
// ready fd). Ten closings, each of which waited out the grace before.
TEST(FdCallbacksAtShutdown, AreDroppedNotPolledForTheGrace) {
  int ready[2], idle[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(idle, O_CLOEXEC), 0);
  ASSERT_EQ(::write(ready[1], "x", 1), 1);
  int calls = 0;
  std::vector<Duration> closings;
  for (int i = 0; i < 10; ++i) {
    std::optional<Loop> loop_storage(std::in_place);
    Loop& loop = *loop_storage;
    loop.add_reader(ready[0], [&] { ++calls; });
    loop.add_reader(idle[0], [&] { ++calls; });
    loop.spawn([&] {
      try {
        Event never;
        never.wait();
      } catch (const Cancelled&) {
        loop.add_reader(ready[0], [&] { ++calls; });  // while closing
        throw;
      }
    });
    loop.call_soon([&] { loop.stop(); });
    loop.run();
    const TimePoint start = Clock::now();
    loop_storage.reset();
    closings.push_back(Clock::now() - start);
  }
  // The median closing, which one slow pause of a loaded machine does not
  // move: each took the whole grace before.
  std::sort(closings.begin(), closings.end());
  EXPECT_LT(closings[closings.size() / 2], std::chrono::milliseconds(50))
      << "the closings waited for the fd callbacks";
  EXPECT_EQ(calls, 10);                       // the ready fd's, in each run() before the close
  EXPECT_NE(::fcntl(ready[0], F_GETFD), -1);  // the fds stay the caller's
  for (int fd : {ready[0], ready[1], idle[0], idle[1]}) ::close(fd);
}

}  // namespace
}  // namespace fiberloop
