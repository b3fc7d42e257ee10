#include "examples/http_parser.h"

#include <charconv>

namespace fiberloop::examples {
namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    if (c <= ' ' || c >= 127 || c == ':' || c == '(' || c == ')' || c == ',' || c == ';')
      return false;
  }
  return true;
}

HttpParse error(const char* why) noexcept {
  HttpParse p;
  p.status = HttpParse::Status::kError;
  p.error = why;
  return p;
}

}  // namespace

HttpParse parse_request(std::string_view buffer) noexcept {
  const std::size_t head_end = buffer.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    if (buffer.size() > kMaxRequestHead) return error("request head too large");
    return {};
  }
  if (head_end + 4 > kMaxRequestHead) return error("request head too large");
  std::string_view head = buffer.substr(0, head_end);

  // Request line: METHOD SP TARGET SP VERSION
  const std::size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  head = line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return error("malformed request line");
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return error("malformed request line");
  }
  HttpParse p;
  HttpRequest& r = p.request;
  r.method = line.substr(0, sp1);
  r.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  r.version = line.substr(sp2 + 1);
  if (!is_token(r.method)) return error("bad method");
  if (r.target.empty()) return error("empty target");
  for (char c : r.target) {
    if (c <= ' ' || c == 127) return error("bad character in target");
  }
  if (r.version == "HTTP/1.1") {
    r.keep_alive = true;
  } else if (r.version != "HTTP/1.0") {
    return error("unsupported HTTP version");
  }

  bool have_length = false;
  while (!head.empty()) {
    const std::size_t end = head.find("\r\n");
    const std::string_view header = head.substr(0, end);
    head = end == std::string_view::npos ? std::string_view() : head.substr(end + 2);
    const std::size_t colon = header.find(':');
    if (colon == std::string_view::npos || !is_token(header.substr(0, colon))) {
      return error("malformed header");
    }
    const std::string_view name = header.substr(0, colon);
    const std::string_view value = trim(header.substr(colon + 1));
    if (iequals(name, "content-length")) {
      std::size_t n = 0;
      const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || ptr != value.data() + value.size() || value.empty()) {
        return error("bad Content-Length");
      }
      if (have_length && n != r.content_length) return error("conflicting Content-Length");
      if (n > (1u << 20)) return error("body too large");
      have_length = true;
      r.content_length = n;
    } else if (iequals(name, "transfer-encoding")) {
      return error("Transfer-Encoding is not supported");
    } else if (iequals(name, "connection")) {
      if (iequals(value, "close")) r.keep_alive = false;
      if (iequals(value, "keep-alive")) r.keep_alive = true;
    }
  }
  const std::size_t total = head_end + 4 + r.content_length;
  if (buffer.size() < total) return p;  // kIncomplete: the body is still coming
  p.status = HttpParse::Status::kComplete;
  p.consumed = total;
  return p;
}

}  // namespace fiberloop::examples
