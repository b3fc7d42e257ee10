// A socket operation that is interrupted (cancel, with_timeout, a stream
// deadline) or whose socket is closed under it, on both backends: on epoll
// the fiber waits for readiness; on io_uring the kernel holds the operation
// itself (RECV into the caller's buffer, SEND, ACCEPT, a POLL), which must
// be cancelled and waited for. Either way: no byte is lost or written into
// a buffer its fiber has left, no accepted fd leaks, a close reaches the
// peer, and the socket stays usable after a timeout.
#include <sys/socket.h>

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

class InterruptedIo : public testing::LoopTest, public ::testing::WithParamInterface<Backend> {
 protected:
  InterruptedIo() : LoopTest(LoopOptions{.backend = GetParam()}) {}
};

using testing::any_port;

// A connected pair: {the accepted end, the connecting end}.
std::pair<TcpStream, TcpStream> connected_pair() {
  auto listener = TcpListener::bind(any_port());
  auto client = TcpStream::connect(listener.local_address());
  return {listener.accept(), std::move(client)};
}

TEST_P(InterruptedIo, ATimedOutReadNeverWritesIntoItsBufferAfterwards) {
  run([] {
    auto [server, client] = connected_pair();
    std::vector<char> abandoned(64, 'x');
    EXPECT_THROW(with_timeout(10ms, [&] { return server.read(abandoned); }), TimeoutError);
    client.write_all("hello");
    char buf[64];
    std::size_t got = 0;
    while (got < 5) got += server.read({buf + got, sizeof buf - got});
    EXPECT_EQ(std::string(buf, got), "hello");  // all of it reached the next read
    this_fiber::sleep_for(5ms);                 // a late write would have landed by now
    EXPECT_EQ(std::string(abandoned.begin(), abandoned.end()), std::string(64, 'x'));
  });
}

TEST_P(InterruptedIo, ACancelRacingArrivingDataLosesNoBytes) {
  constexpr int kRounds = 200;
  int returned_data = 0;  // rounds where the read won the race
  run([&] {
    auto [server, client] = connected_pair();
    for (int round = 0; round < kRounds; ++round) {
      std::string got;
      bool cancelled = false;
      auto reader = spawn([&] {
        try {
          char buf[16];
          const std::size_t n = server.read(buf);
          got.assign(buf, n);
          this_fiber::yield();  // the cancel comes here, if the read won
          ADD_FAILURE() << "round " << round << ": the cancel was lost";
        } catch (const Cancelled&) {
          cancelled = true;
        }
      });
      this_fiber::yield();  // the reader waits in its read now
      client.write_all("abc");
      reader.cancel();  // in the same turn as the data's arrival
      reader.join();
      EXPECT_TRUE(cancelled);
      if (!got.empty()) ++returned_data;
      char rest[3];
      if (got.size() < 3) server.read_exact({rest, 3 - got.size()});
      got.append(rest, 3 - got.size());
      ASSERT_EQ(got, "abc") << "round " << round;
    }
  });
  // Which side wins is the kernel's business; both must keep the bytes.
  RecordProperty("reads_that_won_the_race", returned_data);
}

TEST_P(InterruptedIo, ClosingASocketWithAWaitingReaderReachesThePeer) {
  run([] {
    auto [server, client] = connected_pair();
    auto reader = spawn([&] {
      char buf[8];
      return server.read(buf);
    });
    this_fiber::yield();
    server.close();  // the reader's operation must end before close(2)
    try {
      reader.join();
      ADD_FAILURE() << "the reader's read returned after its socket was closed";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
      EXPECT_NE(std::string(e.what()).find("closed while waiting"), std::string::npos) << e.what();
    }
    char buf[8];
    EXPECT_EQ(with_timeout(5s, [&] { return client.read(buf); }), 0u) << "no FIN reached the peer";
  });
}

TEST_P(InterruptedIo, ClosingADatagramSocketWakesItsWaitingReader) {
  run([] {
    auto socket = UdpSocket::bind(any_port());
    auto reader = spawn([&] {
      char buf[8];
      return socket.recv_from(buf).size;
    });
    this_fiber::yield();
    socket.close();  // a request still holding the socket would keep it open
    try {
      with_timeout(5s, [&] { return reader.join(); });
      ADD_FAILURE() << "recv_from returned after its socket was closed";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF) << e.what();
    }
  });
}

TEST_P(InterruptedIo, ClosingAListenerUnderAWaitingAcceptLeaksNoConnection) {
  run([] {
    for (int round = 0; round < 50; ++round) {
      auto listener = TcpListener::bind(any_port());
      auto acceptor = spawn([&] { return listener.accept(); });
      this_fiber::yield();
      auto client = TcpStream::connect(listener.local_address());
      listener.close();  // races the connection's accept; the fixture counts fds
      try {
        TcpStream conn = acceptor.join();
        EXPECT_TRUE(conn.is_open());
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EBADF) << e.what();
      }
    }
  });
}

TEST_P(InterruptedIo, CancelledAcceptsLoseNoConnection) {
  constexpr int kRounds = 100;
  run([&] {
    auto listener = TcpListener::bind(any_port());
    int accepted = 0;
    for (int round = 0; round < kRounds; ++round) {
      auto acceptor = spawn([&] {
        try {
          TcpStream conn = listener.accept();
          ++accepted;
          this_fiber::yield();  // the cancel comes here, if the accept won
        } catch (const Cancelled&) {
        }
      });
      this_fiber::yield();
      auto client = TcpStream::connect(listener.local_address());
      acceptor.cancel();
      acceptor.join();
      // Accepted and closed by the acceptor, or still queued: then the
      // next accept gets it.
      if (accepted == round) {
        TcpStream conn = listener.accept();
        ++accepted;
      }
      char buf[1];
      EXPECT_EQ(with_timeout(5s, [&] { return client.read(buf); }), 0u) << "round " << round;
    }
    EXPECT_EQ(accepted, kRounds);
  });
}

TEST_P(InterruptedIo, ATimedOutWriteLosesAndDuplicatesNoByte) {
  run([] {
    auto [server, client] = connected_pair();
    // Nobody reads: writes fill both socket buffers, then one waits.
    const std::string chunk(64 * 1024, 'w');
    std::size_t written = 0;
    try {
      with_timeout(50ms, [&] {
        for (;;) written += client.write(chunk);
      });
    } catch (const TimeoutError&) {
    }
    client.shutdown_write();
    std::size_t received = 0;
    char buf[64 * 1024];
    while (std::size_t n = with_timeout(5s, [&] { return server.read(buf); })) {
      for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(buf[i], 'w');
      received += n;
    }
    EXPECT_GT(written, 0u);
    EXPECT_EQ(received, written) << "what the writer was told it wrote is what arrived";
  });
}

TEST_P(InterruptedIo, AConnectThatCannotFinishTimesOutAndLeavesNothingBehind) {
  run([] {
    std::vector<TcpStream> queued;
    const auto [fd, addr] = testing::listener_with_full_backlog(queued);
    EXPECT_THROW(with_timeout(200ms, [&, to = addr] { return TcpStream::connect(to); }),
                 TimeoutError);
    ::close(fd);
  });
}

// A fiber made ready by its fd's report (epoll) or its operation's
// completion (io_uring), whose socket is closed before it runs: it must
// learn that the socket is gone (EBADF), not retry on the fd number, which
// the next socket made takes. Each case opens that socket and checks that
// nothing of it was read, written or accepted.
void expect_closed_while_waiting(Task<void>& task, const char* op) {
  try {
    task.join();
    ADD_FAILURE() << op << " returned after its socket was closed";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF) << e.what();
    EXPECT_NE(std::string(e.what()).find("closed while waiting"), std::string::npos) << e.what();
  }
}

TEST_P(InterruptedIo, AReaderWokenAndThenClosedDoesNotReadTheFdNumbersNextFile) {
  run([] {
    auto [server, client] = connected_pair();
    const int fd = server.fd();
    auto reader = spawn([&] {
      char buf[16];
      (void)server.read(buf);
    });
    this_fiber::yield();  // the reader waits
    client.write_all("A");
    this_fiber::yield();  // the report makes it ready; this fiber runs first
    int pair[2];          // made first, so that neither end takes the closed number
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair), 0);
    server.close();
    ASSERT_EQ(::dup2(pair[0], fd), fd);  // the closed number is another file's now
    ASSERT_EQ(::write(pair[1], "SECRET", 6), 6);
    expect_closed_while_waiting(reader, "read");
    char left[8];
    EXPECT_EQ(::read(pair[0], left, sizeof left), 6) << "the woken reader took another file's data";
    ::close(fd);
    ::close(pair[0]);
    ::close(pair[1]);
  });
}

TEST_P(InterruptedIo, AReaderWokenAndThenDestroyedDoesNotTouchItsSocket) {
  run([] {
    auto [server, client] = connected_pair();
    auto owned = std::make_unique<TcpStream>(std::move(server));
    auto reader = spawn([&] {
      char buf[16];
      (void)owned->read(buf);
    });
    this_fiber::yield();
    client.write_all("A");
    this_fiber::yield();
    TcpStream* stream = owned.get();
    owned.reset();  // (AddressSanitizer reports a touch of it from here on)
    (void)stream;
    expect_closed_while_waiting(reader, "read");
  });
}

TEST_P(InterruptedIo, AWriterWokenAndThenClosedDoesNotWriteIntoTheFdNumbersNextFile) {
  run([] {
    auto [server, client] = connected_pair();
    const int fd = server.fd();
    const std::string big(8 << 20, 'w');
    auto writer = spawn([&] { server.write_all(big); });
    this_fiber::yield();  // the writer fills the buffers and waits
    char sink[1 << 16];
    std::size_t drained = 0;
    while (drained < (1u << 20)) {
      const ssize_t n = ::read(client.fd(), sink, sizeof sink);
      if (n > 0) drained += static_cast<std::size_t>(n);
    }
    this_fiber::yield();  // room: the writer is made ready; this fiber runs first
    int pair[2];          // made first, so that neither end takes the closed number
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair), 0);
    server.close();
    ASSERT_EQ(::dup2(pair[0], fd), fd);  // the closed number is another file's now
    expect_closed_while_waiting(writer, "write");
    char got[8];
    EXPECT_EQ(::read(pair[1], got, sizeof got), -1) << "the woken writer wrote into another file";
    ::close(fd);
    ::close(pair[0]);
    ::close(pair[1]);
  });
}

TEST_P(InterruptedIo, AnAcceptorWokenAndThenClosedDoesNotAcceptFromTheFdNumbersNextListener) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    const int fd = listener.fd();
    auto acceptor = spawn([&] { (void)listener.accept(); });
    this_fiber::yield();  // the acceptor waits
    // A blocking connect(2): loopback completes it at once, and this fiber
    // does not park (TcpStream::connect might, letting the acceptor run).
    const SocketAddress address = listener.local_address();
    const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(::connect(client, address.get(), address.size()), 0);
    this_fiber::yield();  // the connection makes it ready; this fiber runs first
    auto next = TcpListener::bind(any_port());  // made first: another number
    listener.close();
    ASSERT_EQ(::dup2(next.fd(), fd), fd);  // the closed number is another listener's now
    auto waiting = TcpStream::connect(next.local_address());
    expect_closed_while_waiting(acceptor, "accept");
    ::close(fd);
    // The next listener's connection is still there to accept.
    auto taken = with_timeout(5s, [&] { return next.accept(); });
    waiting.write_all("hi");
    char buf[2];
    with_timeout(5s, [&] { taken.read_exact(buf); });
    EXPECT_EQ(std::string(buf, 2), "hi");
    ::close(client);
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, InterruptedIo,
                         ::testing::Values(Backend::epoll, Backend::io_uring),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return std::string(to_string(info.param));
                         });

}  // namespace
}  // namespace fiberloop
