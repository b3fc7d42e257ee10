// A minimal HTTP/1.x request parser for //examples:http_hello: enough for
// keep-alive and pipelining, strict about what it accepts, and bounded.
#pragma once

#include <cstddef>
#include <string_view>

namespace fiberloop::examples {

struct HttpRequest {
  std::string_view method;
  std::string_view target;
  std::string_view version;  // "HTTP/1.1" or "HTTP/1.0"
  bool keep_alive = false;   // HTTP/1.1 unless "Connection: close"; 1.0 only if asked
  std::size_t content_length = 0;
};

struct HttpParse {
  enum class Status { kComplete, kIncomplete, kError };
  Status status = Status::kIncomplete;
  std::size_t consumed = 0;     // bytes of the buffer this request used (head and body)
  HttpRequest request;          // views into the buffer
  const char* error = nullptr;  // why, for kError
};

// The largest request head (request line and headers) accepted.
constexpr std::size_t kMaxRequestHead = 8192;

// Parses the request at the start of `buffer`. kIncomplete: read more and
// call again; if the head is all there and only the body is missing,
// `request` is filled in too (its content_length is the body's size, so a
// reader that took the head alone knows how much more to take). kError:
// answer 400 and close the connection. Never reads past the buffer.
HttpParse parse_request(std::string_view buffer) noexcept;

}  // namespace fiberloop::examples
