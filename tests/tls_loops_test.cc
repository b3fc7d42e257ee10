// A TlsStream used from a fiber of another loop than its socket's: OpenSSL's
// calls on the socket hold the fd as every other call does, so a close on
// the socket's loop never lets them write into whatever reuses its number;
// and a TlsStream destroyed while a fiber reads it lets go of that fiber's
// operation first, on the fiber's loop.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "fiberloop.h"
#include "tests/group_helpers.h"
#include "tests/tls_certs.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::await_fd_waiter;
using testing::read_errno;
using testing::ReadsWhenDestroyed;
using testing::unpinned;

// Each write from loop 1 goes out on the TLS stream or throws EBADF once
// loop 0 has closed it; none reaches the pipe opened right after the close
// (it takes the lowest free number: the closed one), where OpenSSL's send
// would fail with ENOTSOCK. (Before, the BIO called send(2) on the number
// it read at the handshake, without the hold.)
TEST(TlsLoops, ATlsStreamClosedWhileAnotherLoopWritesIsNeverWrittenAfterTheClose) {
  const testing::TestCerts certs;
  LoopGroup group(unpinned(2));
  group.run([&] {
    TlsContext server_ctx = TlsContext::server(certs.cert("server"), certs.key("server"));
    TlsContext client_ctx = TlsContext::client();
    client_ctx.load_verify_file(certs.cert("ca"));
    auto listener = TcpListener::bind(SocketAddress::from_ip("127.0.0.1", 0));
    for (int round = 0; round < 50; ++round) {
      auto accepting = spawn([&] { return TlsStream::accept(listener.accept(), server_ctx); });
      TlsStream client =
          TlsStream::connect("localhost", listener.local_address().port(), client_ctx);
      TlsStream server = accepting.join();
      std::atomic<bool> writing_now{false};
      auto writing = group.spawn_on(1, [&]() -> std::string {
        for (;;) {
          try {
            client.write_all("x");
            writing_now = true;
            this_fiber::yield();  // (loop 1 stays responsive to a close sent to it)
          } catch (const std::system_error& e) {
            return e.code().value() == EBADF ? "EBADF" : e.what();
          }
        }
      });
      while (!writing_now) this_fiber::yield();
      client.close();
      int decoy[2];
      ASSERT_EQ(::pipe2(decoy, O_CLOEXEC | O_NONBLOCK), 0);
      EXPECT_EQ(with_timeout(10s, [&] { return writing.join(); }), "EBADF") << "round " << round;
      char byte;
      EXPECT_EQ(::read(decoy[0], &byte, 1), -1)
          << "round " << round << ": a write reached the pipe";
      ::close(decoy[0]);
      ::close(decoy[1]);
    }
  });
}

// {client, server} TLS streams over loopback, made on the calling fiber's
// loop.
std::pair<std::unique_ptr<TlsStream>, TlsStream> tls_pair(const testing::TestCerts& certs) {
  TlsContext server_ctx = TlsContext::server(certs.cert("server"), certs.key("server"));
  TlsContext client_ctx = TlsContext::client();
  client_ctx.load_verify_file(certs.cert("ca"));
  auto listener = TcpListener::bind(SocketAddress::from_ip("127.0.0.1", 0));
  auto accepting = spawn([&] { return TlsStream::accept(listener.accept(), server_ctx); });
  auto client = std::make_unique<TlsStream>(
      TlsStream::connect("localhost", listener.local_address().port(), client_ctx));
  return {std::move(client), accepting.join()};
}

// A TlsStream destroyed by one fiber while another, of the same loop, is
// parked in its read: the reader wakes with EBADF and unwinds without
// touching the stream (ASan: its claim on the stream was given back into
// the freed object before).
TEST(TlsLoops, ATlsStreamDestroyedWhileAFiberReadsItWakesTheReader) {
  const testing::TestCerts certs;
  fiberloop::run([&] {
    auto [client, server] = tls_pair(certs);
    auto reader = spawn([&] { return read_errno(*client); });
    this_fiber::yield();  // parked in its read
    client.reset();
    EXPECT_EQ(with_timeout(5s, [&] { return reader.join(); }), EBADF);
  });
}

// The same from another loop: loop 1's reader is let go of on loop 1, then
// woken by the close.
TEST(TlsLoops, ATlsStreamDestroyedWhileAnotherLoopReadsItWakesTheReader) {
  const testing::TestCerts certs;
  LoopGroup group(unpinned(2));
  group.run([&] {
    for (int round = 0; round < 10; ++round) {
      auto [client, server] = tls_pair(certs);
      auto reader = group.spawn_on(1, [&, &c = *client] { return read_errno(c); });
      await_fd_waiter(group, 1);  // parked in its read on loop 1
      client.reset();
      EXPECT_EQ(with_timeout(5s, [&] { return reader.join(); }), EBADF) << "round " << round;
    }
  });
}

// A TlsStream assigned to while a fiber reads it: the reader is let go of,
// and the stream (now the other connection) is read at once, not refused
// as a second reader.
TEST(TlsLoops, ATlsStreamAssignedToWhileAFiberReadsItReadsAgain) {
  const testing::TestCerts certs;
  fiberloop::run([&] {
    auto [client, server] = tls_pair(certs);
    auto [other_client, other_server] = tls_pair(certs);
    auto reader = spawn([&] { return read_errno(*client); });
    this_fiber::yield();  // parked in its read
    *client = std::move(*other_client);
    other_server.write_all("z");
    char buf[8];
    EXPECT_EQ(std::string(buf, client->read(buf)), "z");
    EXPECT_EQ(with_timeout(5s, [&] { return reader.join(); }), EBADF);
  });
}

// A TlsStream whose reader was abandoned by its loop's shutdown (parked in a
// read in a destructor, where no interrupt reaches it): a read from another
// loop is refused, saying so; a TlsStream assigned over it reads at once
// (before, its claims stayed with the abandoned thread's loop, and every
// operation from another thread was refused).
TEST(TlsLoops, AReaderAbandonedByItsLoopIsNamedAndLetGoOfByAssignment) {
  const testing::TestCerts certs;
  std::optional<std::pair<std::unique_ptr<TlsStream>, TlsStream>> pair;
  std::string same_thread_refusal;
  ::testing::internal::CaptureStderr();
  std::thread([&] {
    {
      Loop loop;
      loop.spawn([&] {
        pair.emplace(tls_pair(certs));
        loop.stop();  // once this fiber parks below
        ReadsWhenDestroyed reads{pair->first.get()};
        Event never;
        never.wait();
      });
      loop.run();
    }
    // A new loop of the same thread does not take over the claim either
    // (before, it did, and sent close_notify after whatever OpenSSL held).
    fiberloop::run([&] {
      try {
        pair->first->shutdown_write();
      } catch (const std::logic_error& e) {
        same_thread_refusal = e.what();
      }
    });
  }).join();
  EXPECT_NE(same_thread_refusal.find("abandoned by their loop's shutdown"), std::string::npos)
      << same_thread_refusal;
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("abandoned 1 fiber"), std::string::npos) << err;
  fiberloop::run([&] {
    char buf[8];
    try {
      (void)pair->first->read(buf);
      ADD_FAILURE() << "read a TLS stream whose reader was abandoned";
    } catch (const std::logic_error& e) {
      EXPECT_NE(std::string(e.what()).find("abandoned by its loop's shutdown"), std::string::npos)
          << e.what();
    }
    auto [client, server] = tls_pair(certs);
    *pair->first = std::move(*client);
    server.write_all("z");
    EXPECT_EQ(std::string(buf, pair->first->read(buf)), "z");
  });
}

// A TlsStream moved from while a fiber is parked in its read, and then
// destroyed: the move lets go of the reader, which, woken by the data on the
// socket the move took, makes no SSL call through the freed stream (ASan:
// before, it did) and throws EBADF; the new owner reads the data.
TEST(TlsLoops, ATlsStreamMovedFromWhileAFiberReadsItLetsTheReaderGo) {
  const testing::TestCerts certs;
  fiberloop::run([&] {
    auto [client, server] = tls_pair(certs);
    auto reader = spawn([&c = *client] { return read_errno(c); });
    this_fiber::yield();  // parked in its read
    TlsStream moved(std::move(*client));
    client.reset();
    server.write_all("z");
    EXPECT_EQ(with_timeout(5s, [&] { return reader.join(); }), EBADF);
    char buf[8];
    EXPECT_EQ(std::string(buf, moved.read(buf)), "z");
  });
}

}  // namespace
}  // namespace fiberloop
