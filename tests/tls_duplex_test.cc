// TLS with both directions at once: a reader and a writer parked on one
// stream, writes cut off by a deadline, and a TLS 1.3 peer that updates its
// keys (KeyUpdate, which asks us to answer with a write from inside our
// read) while our writer waits for the socket. The peer that rekeys is
// plain blocking OpenSSL on a thread of its own, as any client may be.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <sstream>
#include <string>
#include <thread>

#include "fiberloop.h"
#include "tests/group_helpers.h"
#include "tests/tls_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::any_port;
using testing::count_parked;
using testing::error_of;
using testing::tls_pair;

class TlsDuplex : public testing::Tls {};

// A TLS 1.3 client on plain blocking OpenSSL (verification off), on a
// thread of its own: connects to 127.0.0.1:`port`, runs `body(ssl)` once
// the handshake is done, and closes. Socket timeouts of 10 s bound every
// call it makes.
template <class Body>
std::jthread openssl_peer(std::uint16_t port, Body body) {
  return std::jthread([port, body] {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const timeval bound{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof bound);
    const SocketAddress to = SocketAddress::from_ip("127.0.0.1", port);
    if (::connect(fd, to.get(), to.size()) == 0) {
      SSL* ssl = SSL_new(ctx);
      SSL_set_fd(ssl, fd);
      if (SSL_connect(ssl) == 1) body(ssl);
      SSL_free(ssl);
    }
    ::close(fd);
    SSL_CTX_free(ctx);
  });
}

// Waits (10 s at most) until `flag` is set, from a plain thread.
bool await_flag(const std::atomic<bool>& flag) {
  for (int i = 0; i < 10'000 && !flag; ++i) std::this_thread::sleep_for(1ms);
  return flag;
}

// Waits (10 s at most) until a fiber of this loop is parked on `waiting`
// ("writing fd", "reading fd").
void await_parked_here(const std::string& waiting) {
  for (int i = 0; i < 10'000; ++i) {
    std::ostringstream dump;
    Loop::current()->dump(dump);
    if (count_parked(dump.str(), waiting) > 0) return;
    this_fiber::sleep_for(1ms);
  }
  FAIL() << "no fiber parked on '" << waiting << "' after 10 s";
}

// The peer rekeys `updates` times, asking us to rekey too, each followed by
// a line: "update 0\n", "update 1\n"... Returns what it sent.
std::string rekey_and_send(SSL* ssl, int updates) {
  std::string sent;
  for (int k = 0; k < updates; ++k) {
    const std::string line = "update " + std::to_string(k) + "\n";
    if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1) break;
    if (SSL_write(ssl, line.data(), static_cast<int>(line.size())) <= 0) break;
    sent += line;
  }
  return sent;
}

std::string expected_lines(int updates) {
  std::string all;
  for (int k = 0; k < updates; ++k) all += "update " + std::to_string(k) + "\n";
  return all;
}

// Before, OpenSSL held the writer's unsent half record, and the read that
// had to answer the peer's KeyUpdate failed the connection ("bad length"),
// on both sides.
TEST_F(TlsDuplex, APeersKeyUpdateWhileOurWriterWaitsForTheSocketKeepsTheConnection) {
  constexpr int kUpdates = 20;
  std::string payload(32 << 20, '\0');  // more than loopback's buffers hold
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
  std::atomic<bool> writer_parked{false};
  std::string peer_got;
  std::jthread peer;
  run([&] {
    auto listener = TcpListener::bind(any_port());
    TlsContext server_ctx = server_context();
    peer = openssl_peer(listener.local_address().port(), [&](SSL* ssl) {
      if (!await_flag(writer_parked)) return;
      rekey_and_send(ssl, kUpdates);
      char buf[1 << 16];
      for (int n; (n = SSL_read(ssl, buf, sizeof buf)) > 0;) peer_got.append(buf, n);
      SSL_shutdown(ssl);  // close_notify: our reader's end of stream
    });
    TlsStream s = TlsStream::accept(listener.accept(), server_ctx);
    auto reader = spawn([&] {
      std::string got;
      char buf[4096];
      while (std::size_t n = s.read(buf)) got.append(buf, n);
      return got;
    });
    auto writer = spawn([&] {
      s.write_all(payload);
      s.shutdown_write();  // the peer's reads end
    });
    await_parked_here("writing fd");
    writer_parked = true;
    with_timeout(20s, [&] { writer.join(); });
    EXPECT_EQ(with_timeout(20s, [&] { return reader.join(); }), expected_lines(kUpdates));
  });
  peer.join();
  EXPECT_EQ(peer_got.size(), payload.size());
  EXPECT_TRUE(peer_got == payload);
}

// After a write cut off by its deadline, the stream is no longer written,
// but it is still read: the peer's KeyUpdates are answered behind the cut
// record (which never goes out) and its data arrives. Before, the first
// KeyUpdate failed the read ("bad length").
TEST_F(TlsDuplex, AfterAnInterruptedWriteReadsGoOnThroughThePeersKeyUpdates) {
  constexpr int kUpdates = 20;
  std::atomic<bool> write_cut{false};
  std::jthread peer;
  run([&] {
    auto listener = TcpListener::bind(any_port());
    TlsContext server_ctx = server_context();
    peer = openssl_peer(listener.local_address().port(), [&](SSL* ssl) {
      if (!await_flag(write_cut)) return;
      rekey_and_send(ssl, kUpdates);
      SSL_shutdown(ssl);
      // Drains what we wrote until we close (a socket closed with unread
      // bytes resets the connection, which could overtake the lines).
      char buf[1 << 16];
      while (SSL_read(ssl, buf, sizeof buf) > 0) {
      }
    });
    TlsStream s = TlsStream::accept(listener.accept(), server_ctx);
    const std::string chunk(64 << 10, 'A');
    s.set_write_deadline(Clock::now() + 100ms);
    EXPECT_THROW(
        {
          for (;;) (void)s.write(chunk);  // the peer does not read: buffers fill, then the deadline
        },
        TimeoutError);
    write_cut = true;
    std::string got;
    with_timeout(20s, [&] {
      char buf[4096];
      while (std::size_t n = s.read(buf)) got.append(buf, n);
    });
    EXPECT_EQ(got, expected_lines(kUpdates));
    s.set_write_deadline(TimePoint::max());
    const std::string what = error_of([&] { s.write_all("B"); });
    EXPECT_NE(what.find("interrupted"), std::string::npos) << what;
    s.close();  // the peer's thread ends
  });
  peer.join();
}

TEST_F(TlsDuplex, EightMegabytesEachWayAtOnce) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    TlsContext server_ctx = server_context();
    const std::string payload(8 << 20, 'p');
    auto server = spawn([&] {
      TlsStream s = TlsStream::accept(listener.accept(), server_ctx);
      auto writer = spawn([&] { s.write_all(payload); });  // while it reads
      std::string got(payload.size(), '\0');
      s.read_exact(got);
      writer.join();
      return got == payload;
    });
    TlsContext ctx = trusting_client();
    TlsStream c = TlsStream::connect("localhost", listener.local_address().port(), ctx);
    auto writer = spawn([&] { c.write_all(payload); });
    std::string got(payload.size(), '\0');
    c.read_exact(got);
    writer.join();
    EXPECT_TRUE(got == payload);
    EXPECT_TRUE(server.join());
  });
}

// A write cut off while the socket had not taken all its records: how many
// of its bytes the peer gets is unknown, so later writes fail (Go's rule)
// rather than go on as if the stream were whole.
TEST_F(TlsDuplex, AWriteInterruptedBeforeTheSocketTookItBreaksLaterWritesOnly) {
  run([] {
    auto [c, s] = connected();
    const std::string chunk(64 << 10, 'A');
    c.set_write_deadline(Clock::now() + 50ms);
    EXPECT_THROW(
        {
          for (;;)
            (void)c.write(chunk);  // the server does not read: buffers fill, then the deadline
        },
        TimeoutError);
    c.set_write_deadline(TimePoint::max());
    const std::string what = error_of([&] { c.write_all("B"); });
    EXPECT_NE(what.find("interrupted"), std::string::npos) << what;
    // close_notify would have to follow the unfinished record: refused too,
    // rather than waiting on a socket the peer does not drain.
    const std::string shutdown_what =
        error_of([&] { with_timeout(5s, [&] { c.shutdown_write(); }); });
    EXPECT_NE(shutdown_what.find("interrupted"), std::string::npos) << shutdown_what;
  });
}

// close_notify is a write: refused, before any SSL call, while another
// fiber is in the middle of one, and the write completes. (Before, the
// shutdown reached SSL_shutdown and was refused only when it had to wait
// for the socket, by the fd's one-waiter rule.)
TEST_F(TlsDuplex, AShutdownWhileAnotherFiberWritesIsRefusedAndTheWriteCompletes) {
  run([] {
    auto [c, s] = connected();
    const std::string big(32 << 20, 'A');
    auto writer = spawn([&] { c.write_all(big); });
    this_fiber::sleep_for(20ms);  // the server does not read yet: the writer parks
    ASSERT_FALSE(writer.done());
    const std::string what = error_of([&] { c.shutdown_write(); });
    EXPECT_NE(what.find("another fiber is already writing"), std::string::npos) << what;
    std::string got(big.size(), '\0');
    s.read_exact(got);
    EXPECT_TRUE(got == big);
    writer.join();
    c.shutdown_write();
    char one;
    EXPECT_EQ(s.read({&one, 1}), 0u);  // close_notify: end of stream
  });
}

// A write that failed on the connection (the peer went) is not an
// interruption: neither it nor a later shutdown_write() says so.
TEST_F(TlsDuplex, AWriteThatFailedOnTheConnectionIsNotCalledInterrupted) {
  run([] {
    auto [c, s] = connected();
    s.close();
    const std::string chunk(16 << 10, 'x');
    const std::string what = error_of([&] {
      with_timeout(5s, [&] {
        for (;;) c.write_all(chunk);  // until the reset comes back
      });
    });
    EXPECT_EQ(what.find("interrupted"), std::string::npos) << what;
    EXPECT_EQ(what.find("with_timeout"), std::string::npos) << what;
    const std::string shutdown_what =
        error_of([&] { with_timeout(5s, [&] { c.shutdown_write(); }); });
    EXPECT_EQ(shutdown_what.find("interrupted"), std::string::npos) << shutdown_what;
    EXPECT_EQ(shutdown_what.find("with_timeout"), std::string::npos) << shutdown_what;
  });
}

// A close while a TLS read waits ends the read with an error that names
// the TLS operation and the peer (it named wait_readable, a call the user
// never made, and no stream).
TEST_F(TlsDuplex, ACloseWhileAReadWaitsEndsItNamingTheTlsStream) {
  run([] {
    auto [c, s] = connected();
    auto reader = spawn([&c] {
      return error_of([&c] {
        char buf[8];
        (void)c.read(buf);
      });
    });
    await_parked_here("reading fd");
    std::ostringstream dump;
    Loop::current()->dump(dump);  // the call it waits in, not the socket's wait_readable
    EXPECT_NE(dump.str().find(" in TLS read"), std::string::npos) << dump.str();
    c.close();
    const std::string what = reader.join();
    EXPECT_NE(what.find("TLS read with 127.0.0.1"), std::string::npos) << what;
    EXPECT_NE(what.find("closed while"), std::string::npos) << what;
    EXPECT_EQ(what.find("wait_readable"), std::string::npos) << what;
  });
}

// A TLS 1.3 client (plain blocking OpenSSL, on a thread) with a 4 KiB
// receive buffer, that never reads: it asks us for a key update and sends
// 10 bytes, `rounds` times or until a write fails, then closes; with a
// reset (SO_LINGER 0) 200 ms later if `reset`. Our answers soon find its
// window shut and wait unsent.
std::jthread rekeying_peer_that_never_reads(std::uint16_t port, int rounds, bool reset) {
  return std::jthread([port, rounds, reset] {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const timeval bound{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof bound);
    const SocketAddress to = SocketAddress::from_ip("127.0.0.1", port);
    SSL* ssl = SSL_new(ctx);
    if (::connect(fd, to.get(), to.size()) == 0 && (SSL_set_fd(ssl, fd), SSL_connect(ssl)) == 1) {
      for (int k = 0; k < rounds; ++k) {
        if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1 ||
            SSL_write(ssl, "0123456789", 10) != 10)
          break;
      }
      if (reset) {
        std::this_thread::sleep_for(200ms);
        const linger now{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
      }
    }
    ::close(fd);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  });
}

// Accepts one connection on `listener` with a 4 KiB send buffer, and a TLS
// server on it.
TlsStream accept_with_a_small_send_buffer(TcpListener& listener, const TlsContext& context) {
  TcpStream tcp = listener.accept();
  const int small = 4096;
  ::setsockopt(tcp.fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  return TlsStream::accept(std::move(tcp), context);
}

// A peer that asks for key updates but does not read, then resets the
// connection: our reader, whose answers wait unsent, ends with the reset.
// Before, the send of those answers took the reset (the kernel reports it
// once), and the read then found the TCP end: a clean end of stream, with
// the peer's last data lost silently.
TEST_F(TlsDuplex, APeersResetWhileKeyUpdateAnswersWaitIsAnErrorNotAnEnd) {
  std::jthread peer;
  run([&] {
    auto listener = TcpListener::bind(any_port());
    TlsContext server_ctx = server_context();
    const std::uint16_t port = listener.local_address().port();
    peer = rekeying_peer_that_never_reads(port, 2000, /*reset=*/true);
    TlsStream s = accept_with_a_small_send_buffer(listener, server_ctx);
    std::size_t got = 0;
    const std::string what = error_of([&] {
      with_timeout(20s, [&] {
        char buf[1000];
        while (std::size_t n = s.read(buf)) {
          got += n;
          this_fiber::sleep_for(100us);  // slower than the peer: its data waits for us
        }
      });
    });
    EXPECT_NE(what.find("reset"), std::string::npos) << what << " after " << got << " bytes";
  });
}

// A peer that asks for key updates and never reads our answers: they wait
// unsent, bounded (1 MiB, about 40000 answers), and then the read gives the
// connection up, saying why. Without the bound they grew without end.
TEST_F(TlsDuplex, APeerThatAsksForKeyUpdatesAndNeverReadsIsGivenUpAtTheBound) {
  std::jthread peer;
  run([&] {
    auto listener = TcpListener::bind(any_port());
    TlsContext server_ctx = server_context();
    peer = rekeying_peer_that_never_reads(listener.local_address().port(), 1'000'000,
                                          /*reset=*/false);
    TlsStream s = accept_with_a_small_send_buffer(listener, server_ctx);
    std::size_t got = 0;
    const std::string what = error_of([&] {
      with_timeout(60s, [&] {
        char buf[4096];
        while (std::size_t n = s.read(buf)) got += n;
      });
    });
    EXPECT_NE(what.find("does not read the answers (1 MiB unsent)"), std::string::npos)
        << what << " after " << got << " bytes";
    EXPECT_GT(got, 100'000u) << "given up early";
    s.close();  // the peer's next write fails, and it ends
  });
}

}  // namespace
}  // namespace fiberloop
