// An HTTP/1.1 "hello world" server: keep-alive, pipelining-safe (requests
// that arrive together are answered in order, in one write), strict parser.
//   ./bazelw run -c opt //examples:http_hello -- --port 8080 [--loops N]
//   wrk -t1 -c50 -d10s http://127.0.0.1:8080/
#include <string>
#include <string_view>

#include "examples/flags.h"
#include "examples/http_parser.h"
#include "examples/serve.h"

namespace {

constexpr std::string_view kBody = "Hello, world!\n";

std::string response(bool keep_alive) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
         std::to_string(kBody.size()) + (keep_alive ? "\r\n" : "\r\nConnection: close\r\n") +
         "\r\n" + std::string(kBody);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fiberloop;
  const auto address = SocketAddress::from_ip(examples::flag(argc, argv, "--host", "127.0.0.1"),
                                              examples::port_flag(argc, argv, 8080));
  const std::string keep = response(true), close = response(false);
  return examples::serve(
      "http_hello", address,
      [&](TcpStream& conn) {
        std::string in, out;
        char buf[16384];
        for (;;) {
          const std::size_t n = conn.read(buf);
          if (n == 0) return;
          in.append(buf, n);
          std::size_t used = 0;
          bool open = true;
          while (open) {
            const auto p = examples::parse_request(std::string_view(in).substr(used));
            if (p.status == examples::HttpParse::Status::kIncomplete) break;
            if (p.status == examples::HttpParse::Status::kError) {
              out += "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
              open = false;
              break;
            }
            out += p.request.keep_alive ? keep : close;
            open = p.request.keep_alive;
            used += p.consumed;
          }
          in.erase(0, used);
          if (!out.empty()) {
            conn.write_all(out);
            out.clear();
          }
          if (!open) return;
        }
      },
      examples::loops_flag(argc, argv));
}
