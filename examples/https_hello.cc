// An HTTPS "hello world" server: TLS 1.3 on OpenSSL, keep-alive, one
// BufferedReader per connection reading each request's header block.
//   ./bazelw run -c opt //examples:https_hello -- --cert cert.pem --key key.pem --port 8443
//   curl -k https://127.0.0.1:8443/
// A self-signed certificate for trying it:
//   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes
//       -keyout key.pem -out cert.pem -days 30 -subj /CN=localhost   (one line)
#include <chrono>
#include <string>
#include <string_view>

#include "examples/flags.h"
#include "examples/http_parser.h"
#include "examples/serve.h"

namespace {

constexpr std::string_view kHello =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nHello, world!\n";
constexpr std::string_view kBadRequest =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

}  // namespace

int main(int argc, char** argv) {
  fiberloop::examples::check_flags(argc, argv, {"--host", "--port", "--loops", "--cert", "--key"});
  using namespace fiberloop;
  using namespace std::chrono_literals;
  const TlsContext context = examples::tls_server_context(
      "https_hello", argc, argv, "--cert cert.pem --key key.pem [--port 8443] [--loops N]");
  const auto address = SocketAddress::from_ip(examples::flag(argc, argv, "--host", "127.0.0.1"),
                                              examples::port_flag(argc, argv, 8443));
  // One connection: the handshake, then requests until the client is done.
  const auto handle = [&](TcpStream& conn) {
    conn.set_deadline(Clock::now() + 10s);  // the handshake's budget
    TlsStream tls = TlsStream::accept(std::move(conn), context);
    BufferedReader in(tls, 16 * 1024);  // the longest header block we accept
    for (;;) {
      tls.set_deadline(Clock::now() + 60s);  // idle keep-alive connections go
      std::string head;
      try {
        head = in.read_until("\r\n\r\n");
      } catch (const IncompleteReadError&) {
        return;  // the client is done
      } catch (const LimitOverrunError&) {
        tls.write_all(kBadRequest);
        return;
      }
      const auto p = examples::parse_request(head);
      if (p.status != examples::HttpParse::Status::kComplete) {
        tls.write_all(kBadRequest);
        return;
      }
      tls.write_all(kHello);
      if (!p.request.keep_alive) {
        tls.shutdown_write();
        return;
      }
    }
  };
  return examples::serve(
      "https_hello", address,
      [&](TcpStream& conn) {
        try {
          handle(conn);
        } catch (const TlsError&) {
          // Not TLS, a certificate the client refused, a broken record: that
          // connection is over, the server is not.
        } catch (const TimeoutError&) {
          // A handshake never finished, or an idle keep-alive connection.
        }
      },
      examples::loops_flag(argc, argv));
}
