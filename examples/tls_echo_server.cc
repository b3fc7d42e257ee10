// A TLS echo server: every byte a client sends over TLS comes back. The
// fiberloop side of the report's TLS rows (bench/tls_epoll_server.cc is the
// plain OpenSSL + epoll side).
//   ./bazelw run -c opt //examples:tls_echo_server -- --cert cert.pem --key key.pem
//       --port 7443 [--loops N]                                   (one line)
#include <chrono>

#include "examples/flags.h"
#include "examples/serve.h"

int main(int argc, char** argv) {
  fiberloop::examples::check_flags(argc, argv, {"--host", "--port", "--loops", "--cert", "--key"});
  using namespace fiberloop;
  using namespace std::chrono_literals;
  const TlsContext context = examples::tls_server_context(
      "tls_echo_server", argc, argv, "--cert cert.pem --key key.pem [--port 7443] [--loops N]");
  const auto address = SocketAddress::from_ip(examples::flag(argc, argv, "--host", "127.0.0.1"),
                                              examples::port_flag(argc, argv, 7443));
  return examples::serve(
      "tls_echo_server", address,
      [&](TcpStream& conn) {
        try {
          conn.set_deadline(Clock::now() + 10s);  // the handshake's budget
          TlsStream tls = TlsStream::accept(std::move(conn), context);
          tls.set_deadline(TimePoint::max());  // echo for as long as the client likes
          char buf[16384];
          while (std::size_t n = tls.read(buf)) tls.write_all({buf, n});
        } catch (const TlsError&) {
          // Not TLS, or a broken record: that connection is over.
        } catch (const TimeoutError&) {
          // A handshake that never finished.
        }
      },
      examples::loops_flag(argc, argv));
}
