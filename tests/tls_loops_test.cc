// A TlsStream used from a fiber of another loop than its socket's: OpenSSL's
// calls on the socket hold the fd as every other call does, so a close on
// the socket's loop never lets them write into whatever reuses its number.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

#include "fiberloop.h"
#include "tests/group_helpers.h"
#include "tests/tls_certs.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
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

}  // namespace
}  // namespace fiberloop
