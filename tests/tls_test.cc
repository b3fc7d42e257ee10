// TLS with real OpenSSL handshakes over loopback, certificates made at test
// time: verification (chain, host name, expiry), client certificates, ALPN,
// close_notify, and the bad input a server meets
// (a plaintext peer, a deadline mid-handshake), with no fd left open.
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "fiberloop.h"
#include "tests/tls_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::any_port;
using testing::error_of;
using testing::Tls;
using testing::tls_pair;

TEST_F(Tls, HandshakeVerifyEchoAndCloseNotify) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    TlsContext server_ctx = server_context();
    auto server = spawn([&] {
      TlsStream s = TlsStream::accept(listener.accept(), server_ctx);
      BufferedReader in(s);
      while (auto line = in.read_line()) s.write_all({"echo: ", *line, "\n"});
      s.shutdown_write();  // close_notify back
    });
    TlsContext ctx = trusting_client();
    TlsStream c = TlsStream::connect("localhost", listener.local_address().port(), ctx);
    EXPECT_EQ(c.protocol_version(), "TLSv1.3");
    EXPECT_EQ(c.alpn_protocol(), "");
    Stream& any = c;
    any.write_all("hello\nworld\n");
    BufferedReader in(any);
    EXPECT_EQ(in.read_line(), "echo: hello");
    EXPECT_EQ(in.read_line(), "echo: world");
    c.shutdown_write();                       // the server's read_line ends
    EXPECT_EQ(in.read_line(), std::nullopt);  // and its close_notify ends ours
    server.join();
    EXPECT_NE(c.describe().find("localhost"), std::string::npos) << c.describe();
  });
}

TEST_F(Tls, AnIpAddressIsVerifiedAgainstTheCertificate) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    TlsContext server_ctx = server_context();
    auto server = spawn([&] { TlsStream::accept(listener.accept(), server_ctx).write_all("ok"); });
    TlsContext ctx = trusting_client();
    TlsStream c = TlsStream::connect("127.0.0.1", listener.local_address().port(), ctx);
    char buf[2];
    c.read_exact(buf);
    server.join();
  });
}

// The client's verdicts on bad servers; the server sees the handshake fail.
TEST_F(Tls, AWrongNameAnExpiredCertificateAndAnUnknownCaAreRefused) {
  run([] {
    const struct {
      const char* cert;
      const char* host;
      bool trust_ca;
      const char* reason;
    } cases[] = {
        {"server", "example.com", true, "hostname mismatch"},
        {"expired", "localhost", true, "certificate has expired"},
        {"server", "localhost", false, "unable to get local issuer certificate"},
    };
    for (const auto& c : cases) {
      auto listener = TcpListener::bind(any_port());
      TlsContext server_ctx = TlsContext::server(certs().cert(c.cert), certs().key(c.cert));
      auto server =
          spawn([&] { EXPECT_THROW(TlsStream::accept(listener.accept(), server_ctx), TlsError); });
      TlsContext ctx = c.trust_ca ? trusting_client() : TlsContext::client();
      auto tcp = TcpStream::connect(listener.local_address());
      const std::string what = error_of([&] { TlsStream::client(std::move(tcp), ctx, c.host); });
      EXPECT_NE(what.find(c.reason), std::string::npos) << what;
      EXPECT_NE(what.find("TLS handshake with 127.0.0.1:"), std::string::npos) << what;
      server.join();
    }
  });
}

TEST_F(Tls, VerificationOffAcceptsAnyCertificateOnlyWhenAsked) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    TlsContext server_ctx = TlsContext::server(certs().cert("expired"), certs().key("expired"));
    auto server = spawn([&] { TlsStream::accept(listener.accept(), server_ctx).write_all("x"); });
    TlsContext ctx = TlsContext::client();
    ctx.set_verify_peer(false);
    TlsStream c = TlsStream::client(TcpStream::connect(listener.local_address()), ctx, "anything");
    char buf[1];
    c.read_exact(buf);
    server.join();
  });
}

// OpenSSL reads an empty name as "check no name", so a verifying client
// without a host would accept any certificate its CAs signed, for any
// server: refused before the handshake, and the connection closed.
TEST_F(Tls, AVerifyingClientWithoutAHostNameIsRefused) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    TlsContext server_ctx = server_context();
    auto server =
        spawn([&] { EXPECT_THROW(TlsStream::accept(listener.accept(), server_ctx), TlsError); });
    TlsContext ctx = trusting_client();
    auto tcp = TcpStream::connect(listener.local_address());
    std::string what;
    try {
      TlsStream::client(std::move(tcp), ctx, "");
      what = "(no exception)";
    } catch (const std::invalid_argument& e) {
      what = e.what();
    }
    EXPECT_NE(what.find("no host name to verify"), std::string::npos) << what;
    EXPECT_NE(what.find("127.0.0.1:"), std::string::npos) << what;
    server.join();  // the server's handshake ended: the connection was closed
  });
}

TEST_F(Tls, ClientCertificatesAreRequiredWhenTheServerVerifies) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    TlsContext server_ctx = server_context();
    server_ctx.load_verify_file(certs().cert("ca"));
    server_ctx.set_verify_peer(true);
    auto server = spawn([&] {
      TlsStream::accept(listener.accept(), server_ctx).write_all("welcome");
      EXPECT_THROW(TlsStream::accept(listener.accept(), server_ctx), TlsError);  // no certificate
    });
    TlsContext with_cert = trusting_client();
    with_cert.load_cert_chain(certs().cert("client"), certs().key("client"));
    TlsStream c = TlsStream::connect("localhost", listener.local_address().port(), with_cert);
    char buf[7];
    c.read_exact(buf);
    TlsContext without = trusting_client();
    // TLS 1.3: the client's handshake ends before the server has checked;
    // the refusal arrives as an alert on the first read.
    EXPECT_THROW(
        {
          TlsStream d = TlsStream::connect("localhost", listener.local_address().port(), without);
          (void)d.read(buf);
        },
        TlsError);
    server.join();
  });
}

TEST_F(Tls, AlpnPicksTheServersFirstChoiceTheClientOffers) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    TlsContext server_ctx = server_context();
    server_ctx.set_alpn({"h2", "http/1.1"});
    auto server = spawn([&] {
      for (int i = 0; i < 2; ++i) {
        TlsStream s = TlsStream::accept(listener.accept(), server_ctx);
        s.write_all(s.alpn_protocol() + "\n");
      }
    });
    for (auto offer : {std::vector<std::string>{"http/1.1", "h2"}, std::vector<std::string>{"x"}}) {
      TlsContext ctx = trusting_client();
      ctx.set_alpn(offer);
      TlsStream c = TlsStream::connect("localhost", listener.local_address().port(), ctx);
      EXPECT_EQ(BufferedReader(c).read_line(), c.alpn_protocol());
      EXPECT_EQ(c.alpn_protocol(), offer.size() == 2 ? "h2" : "");
    }
    server.join();
    TlsContext bad = TlsContext::client();
    EXPECT_THROW(bad.set_alpn({""}), std::invalid_argument);
  });
}

TEST_F(Tls, APlaintextPeerIsATlsErrorOnEitherSide) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    auto plain_server = spawn([&] {
      auto conn = listener.accept();
      conn.write_all("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
      conn.close();
    });
    TlsContext ctx = trusting_client();
    const std::string what =
        error_of([&] { TlsStream::connect("localhost", listener.local_address().port(), ctx); });
    EXPECT_NE(what.find("TLS handshake with"), std::string::npos) << what;
    plain_server.join();

    TlsContext server_ctx = server_context();
    auto tls_server =
        spawn([&] { return error_of([&] { TlsStream::accept(listener.accept(), server_ctx); }); });
    auto plain_client = TcpStream::connect(listener.local_address());
    plain_client.write_all("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string server_saw = tls_server.join();
    EXPECT_NE(server_saw.find("TLS handshake with 127.0.0.1:"), std::string::npos) << server_saw;
  });
}

TEST_F(Tls, ADeadlineOrATimeoutThatPassesMidHandshakeEndsIt) {
  run([] {
    auto listener = TcpListener::bind(any_port());  // accepts in the kernel, never answers
    TlsContext ctx = trusting_client();
    auto tcp = TcpStream::connect(listener.local_address());
    tcp.set_deadline(Clock::now() + 30ms);
    const std::string what = error_of([&] { TlsStream::client(std::move(tcp), ctx, "localhost"); });
    EXPECT_NE(what.find("TLS handshake with 127.0.0.1:"), std::string::npos) << what;
    EXPECT_NE(what.find("deadline has passed"), std::string::npos) << what;
    EXPECT_THROW(
        with_timeout(
            30ms, [&] { TlsStream::connect("localhost", listener.local_address().port(), ctx); }),
        TimeoutError);
    auto cancelled =
        spawn([&] { TlsStream::connect("localhost", listener.local_address().port(), ctx); });
    this_fiber::sleep_for(10ms);
    cancelled.cancel();
    EXPECT_THROW(cancelled.join(), Cancelled);
  });
}

TEST_F(Tls, ContextErrorsNameTheFile) {
  run([] {
    std::string what = error_of([] { TlsContext::server("/no/such/cert.pem", "/no/such/key"); });
    EXPECT_NE(what.find("/no/such/cert.pem"), std::string::npos) << what;
    // The reason once, without OpenSSL's "system lib" layers around it.
    EXPECT_TRUE(what.ends_with(": No such file or directory")) << what;
    what = error_of(
        [] { TlsContext::server(certs().cert("server"), certs().key("client")); });  // wrong key
    EXPECT_NE(what.find("does not match"), std::string::npos) << what;
    TlsContext c = TlsContext::client();
    what = error_of([&] { c.load_verify_file("/no/such/ca.pem"); });
    EXPECT_NE(what.find("/no/such/ca.pem"), std::string::npos) << what;
  });
}

// A pair of connected TLS streams over loopback (client, server).
// No close_notify, only the TCP end: end of stream, as Python reads it.
TEST_F(Tls, APeerThatClosesWithoutCloseNotifyReadsAsEndOfStream) {
  run([] {
    auto [c, s] = connected();
    s.write_all("hi");
    s.close();
    char buf[8];
    EXPECT_EQ(c.read(buf), 2u);
    EXPECT_EQ(c.read(buf), 0u);
  });
}

// A TLS 1.2 server that asks to renegotiate is refused, as Go's client
// refuses by default (a renegotiation makes a read write and a write read,
// which a stream's one reader and one writer cannot do at once; before, the
// client took part). The server, plain blocking OpenSSL on a thread, sees
// the refusal; the data before it arrives.
TEST_F(Tls, AServersRenegotiationIsRefused) {
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  const SocketAddress any = SocketAddress::parse("127.0.0.1:0");
  ASSERT_EQ(::bind(lfd, any.get(), any.size()), 0);
  ASSERT_EQ(::listen(lfd, 1), 0);
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  const std::uint16_t port = SocketAddress(reinterpret_cast<sockaddr*>(&bound), bound_len).port();
  std::string server_saw;
  std::thread server([&] {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_use_certificate_chain_file(ctx, certs().cert("server").c_str());
    SSL_CTX_use_PrivateKey_file(ctx, certs().key("server").c_str(), SSL_FILETYPE_PEM);
    const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    const timeval bound_wait{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &bound_wait, sizeof bound_wait);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      SSL_write(ssl, "before", 6);
      SSL_renegotiate(ssl);
      SSL_do_handshake(ssl);  // sends the HelloRequest
      SSL_write(ssl, "after!", 6);
      char buf[16];
      const int n = SSL_read(ssl, buf, sizeof buf);
      if (n > 0) {
        server_saw = "read " + std::string(buf, static_cast<std::size_t>(n));
      } else {
        const char* reason = ERR_reason_error_string(ERR_peek_last_error());
        server_saw = reason != nullptr ? reason : "(no reason)";
      }
    }
    SSL_free(ssl);
    ::close(fd);
    SSL_CTX_free(ctx);
  });
  run([&] {
    TlsContext ctx = trusting_client();
    TlsStream c = TlsStream::connect("localhost", port, ctx);
    char buf[12];
    c.read_exact(buf);  // the HelloRequest comes between the two
    EXPECT_EQ(std::string(buf, 12), "beforeafter!");
    c.write_all("ping");
  });
  server.join();
  ::close(lfd);
  EXPECT_NE(server_saw.find("no renegotiation"), std::string::npos) << server_saw;
}

TEST_F(Tls, ShutdownTwiceAndUseAfterCloseAreHarmless) {
  run([] {
    auto [c, s] = connected();
    c.shutdown_write();
    with_timeout(5s, [&] { c.shutdown_write(); });  // does nothing, at once
    c.close();
    try {
      c.write_all("secret");
      ADD_FAILURE() << "wrote to a closed stream";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF) << e.what();
    }
    char buf[4];
    EXPECT_THROW((void)c.read(buf), std::system_error);
    // A stream moved from after its close_notify: EBADF, as every other
    // call on it (not a crash in OpenSSL on the missing connection).
    auto [c2, s2] = connected();
    c2.shutdown_write();
    TlsStream taken = std::move(c2);
    EXPECT_THROW(c2.shutdown_write(), std::system_error);  // NOLINT(bugprone-use-after-move)
    taken.shutdown_write();                                // sent already: nothing
  });
}

// SSL_OP_IGNORE_UNEXPECTED_EOF makes a TCP end mid-handshake look like a
// clean end of stream: that is no connection, on either side.
TEST_F(Tls, APeerThatClosesMidHandshakeIsATlsErrorOnEitherSide) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    auto closing_server = spawn([&] {
      auto conn = listener.accept();
      char hello[16 << 10];
      (void)conn.read(hello);  // the ClientHello, read: the close is a FIN, not a reset
      conn.close();
    });
    TlsContext ctx = trusting_client();
    std::string what =
        error_of([&] { TlsStream::connect("localhost", listener.local_address().port(), ctx); });
    EXPECT_NE(what.find("closed the connection before the handshake finished"), std::string::npos)
        << what;
    closing_server.join();

    TlsContext server_ctx = server_context();
    auto tls_server =
        spawn([&] { return error_of([&] { TlsStream::accept(listener.accept(), server_ctx); }); });
    TcpStream::connect(listener.local_address()).close();
    what = tls_server.join();
    EXPECT_NE(what.find("closed the connection before the handshake finished"), std::string::npos)
        << what;
  });
}

// With verification off the client keeps OpenSSL's verdict on the
// certificate ("unable to get local issuer certificate"); a later record
// error is not about the certificate and must not say so.
TEST_F(Tls, ACertificateVerdictIsNotAddedToErrorsAfterTheHandshake) {
  run([] {
    TlsContext server_ctx = server_context();
    TlsContext ctx = TlsContext::client();  // the system's CAs: the test CA is unknown
    ctx.set_verify_peer(false);
    auto [c, s] = tls_pair(ctx, server_ctx);
    // An application-data record whose tag cannot check out.
    const char forged[] = "\x17\x03\x03\x00\x20xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    ASSERT_EQ(::send(s.tcp().fd(), forged, sizeof forged - 1, MSG_NOSIGNAL),
              static_cast<ssize_t>(sizeof forged - 1));
    char buf[64];
    const std::string what = error_of([&] { (void)c.read(buf); });
    EXPECT_NE(what.find("TLS read with"), std::string::npos) << what;
    EXPECT_EQ(what.find("certificate"), std::string::npos) << what;
  });
}

// OpenSSL's connection state is one thread's: while a fiber of one loop is
// in an operation (parked in a read here), another loop's is refused; once
// it has ended, the stream may be used from the other loop.
TEST_F(Tls, AStreamInUseOnOneLoopIsRefusedToAnotherUntilItsOperationEnds) {
  run([] {
    auto [c, s] = connected();
    auto reader = spawn([&] {
      char buf[8];
      return std::string(buf, c.read(buf));
    });
    this_fiber::yield();  // parked in the read
    const auto on_another_loop = [&](const char* text) {
      std::string what;
      std::thread([&] {
        fiberloop::run([&] { what = error_of([&] { c.write_all(text); }); });
      }).join();
      return what;
    };
    const std::string what = on_another_loop("from elsewhere");
    EXPECT_NE(what.find("another loop"), std::string::npos) << what;
    s.write_all("hi");
    EXPECT_EQ(reader.join(), "hi");
    EXPECT_EQ(on_another_loop("later"), "(no exception)");
    char buf[16];
    EXPECT_EQ(std::string(buf, s.read(buf)), "later");
  });
}

}  // namespace
}  // namespace fiberloop
