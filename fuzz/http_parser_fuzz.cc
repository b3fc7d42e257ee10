// Fuzz target: the HTTP example's request parser on arbitrary bytes never
// reads past the buffer (ASan), never accepts an unbounded head, and gives
// consistent answers: a complete request's fields point into the buffer
// and parsing just its bytes gives the same request; an error says why.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "examples/http_parser.h"

namespace {

using fiberloop::examples::HttpParse;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "http_parser_fuzz: %s\n", what);
  std::abort();
}

bool inside(std::string_view part, std::string_view buffer) {
  return part.empty() || (part.data() >= buffer.data() &&
                          part.data() + part.size() <= buffer.data() + buffer.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view buffer(reinterpret_cast<const char*>(data), size);
  const HttpParse p = fiberloop::examples::parse_request(buffer);
  switch (p.status) {
    case HttpParse::Status::kError:
      if (p.error == nullptr || *p.error == '\0') fail("an error without a reason");
      break;
    case HttpParse::Status::kIncomplete:
      // Waiting for more is only right while the head could still fit.
      if (buffer.find("\r\n\r\n") == std::string_view::npos &&
          buffer.size() > fiberloop::examples::kMaxRequestHead + 4) {
        fail("an incomplete head longer than kMaxRequestHead");
      }
      break;
    case HttpParse::Status::kComplete: {
      if (p.consumed == 0 || p.consumed > buffer.size()) fail("consumed outside the buffer");
      const auto& r = p.request;
      if (!inside(r.method, buffer) || !inside(r.target, buffer) || !inside(r.version, buffer))
        fail("a field that points outside the buffer");
      if (r.method.empty() || r.target.empty()) fail("a complete request without method or target");
      const HttpParse again = fiberloop::examples::parse_request(buffer.substr(0, p.consumed));
      if (again.status != HttpParse::Status::kComplete || again.consumed != p.consumed ||
          again.request.method != r.method || again.request.target != r.target ||
          again.request.keep_alive != r.keep_alive ||
          again.request.content_length != r.content_length) {
        fail("the request's own bytes parse differently");
      }
      break;
    }
  }
  return 0;
}
