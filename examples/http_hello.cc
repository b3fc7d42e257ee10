// An HTTP/1.1 "hello world" server: keep-alive, pipelining-safe (requests
// that arrive together are answered in order, in one write), strict parser.
// Each request head is read with BufferedReader::read_slice: a view into the
// reader's buffer, parsed where it lies, with no copy and no allocation.
//   ./bazelw run -c opt //examples:http_hello -- --port 8080 [--loops N]
//   wrk -t1 -c50 -d10s http://127.0.0.1:8080/
#include <string>
#include <string_view>

#include "examples/flags.h"
#include "examples/http_parser.h"
#include "examples/serve.h"

namespace {

constexpr std::string_view kBody = "Hello, world!\n";
constexpr std::string_view kBadRequest =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

std::string response(bool keep_alive) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
         std::to_string(kBody.size()) + (keep_alive ? "\r\n" : "\r\nConnection: close\r\n") +
         "\r\n" + std::string(kBody);
}

}  // namespace

int main(int argc, char** argv) {
  fiberloop::examples::check_flags(argc, argv, {"--host", "--port", "--loops"});
  using namespace fiberloop;
  using Status = examples::HttpParse::Status;
  const auto address = SocketAddress::from_ip(examples::flag(argc, argv, "--host", "127.0.0.1"),
                                              examples::port_flag(argc, argv, 8080));
  const std::string keep = response(true), close = response(false);
  return examples::serve(
      "http_hello", address,
      [&](TcpStream& conn) {
        BufferedReader in(conn, examples::kMaxRequestHead);
        std::string out;  // answers to requests that came together
        for (;;) {
          examples::HttpParse p;
          try {
            // A view into the reader's buffer, valid until the next call on
            // the reader: the parse's views go with it, and only keep_alive
            // and content_length (plain values) are used after that.
            p = examples::parse_request(in.read_slice("\r\n\r\n"));
            // kIncomplete: the head is in, its body (which we ignore) is not.
            if (p.status == Status::kIncomplete) in.read_exactly(p.request.content_length);
          } catch (const IncompleteReadError& e) {
            // The client is done; if it stopped mid-request, say so.
            if (!e.partial().empty()) out += kBadRequest;
            if (!out.empty()) conn.write_all(out);
            return;
          } catch (const LimitOverrunError&) {
            conn.write_all({out, kBadRequest});  // a head longer than kMaxRequestHead
            return;
          }
          if (p.status == Status::kError) {
            conn.write_all({out, kBadRequest});
            return;
          }
          out += p.request.keep_alive ? keep : close;
          // Answer once no further request is already buffered (one write
          // for a pipelined batch), or when the connection ends here.
          if (in.buffered() == 0 || !p.request.keep_alive) {
            conn.write_all(out);
            out.clear();
          }
          if (!p.request.keep_alive) return;
        }
      },
      examples::loops_flag(argc, argv));
}
