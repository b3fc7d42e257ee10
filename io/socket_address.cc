#include "io/socket_address.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <charconv>
#include <cstring>
#include <optional>
#include <stdexcept>

namespace fiberloop {
namespace {

[[noreturn]] void bad(std::string_view text, const char* why) {
  throw std::invalid_argument("SocketAddress: '" + std::string(text) + "': " + why);
}

}  // namespace

SocketAddress::SocketAddress() noexcept : storage_{}, len_(0) { storage_.ss_family = AF_UNSPEC; }

SocketAddress::SocketAddress(const sockaddr* addr, socklen_t len) noexcept : storage_{}, len_(0) {
  if (len > sizeof storage_) len = sizeof storage_;
  std::memcpy(&storage_, addr, len);
  len_ = len;
}

namespace {

// The interface of an IPv6 scope ("eth0", or its index "2"), or 0.
std::uint32_t scope_index(std::string_view scope) {
  std::uint32_t index = 0;
  const auto [end, ec] = std::from_chars(scope.data(), scope.data() + scope.size(), index);
  if (ec == std::errc() && end == scope.data() + scope.size()) return index;
  if (scope.size() >= IF_NAMESIZE) return 0;
  char name[IF_NAMESIZE] = {};
  std::memcpy(name, scope.data(), scope.size());
  return ::if_nametoindex(name);
}

// A numeric IPv4 or IPv6 address (an IPv6 one may name its scope:
// "fe80::1%eth0"), or nullopt. Throws (bad(), naming `text`) for an
// unknown scope.
std::optional<SocketAddress> parse_ip(std::string_view ip, std::uint16_t port,
                                      std::string_view text) {
  if (ip.find('\0') != std::string_view::npos) return std::nullopt;
  std::string_view scope;
  if (const auto percent = ip.find('%'); percent != std::string_view::npos) {
    scope = ip.substr(percent + 1);
    ip = ip.substr(0, percent);
    if (scope.empty()) return std::nullopt;
  }
  if (ip.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, ip.data(), ip.size());
  sockaddr_in v4{};
  if (scope.empty() && ::inet_pton(AF_INET, buf, &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    return SocketAddress(reinterpret_cast<sockaddr*>(&v4), sizeof v4);
  }
  sockaddr_in6 v6{};
  if (::inet_pton(AF_INET6, buf, &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    if (!scope.empty()) {
      v6.sin6_scope_id = scope_index(scope);
      if (v6.sin6_scope_id == 0) bad(text, "no such network interface (the scope after '%')");
    }
    return SocketAddress(reinterpret_cast<sockaddr*>(&v6), sizeof v6);
  }
  return std::nullopt;
}

}  // namespace

SocketAddress SocketAddress::from_ip(std::string_view ip, std::uint16_t port) {
  if (auto a = parse_ip(ip, port, ip)) return *a;
  bad(ip, "not a numeric IPv4 or IPv6 address (use resolve() for names)");
}

SocketAddress SocketAddress::parse(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) bad(text, "'[' without ']'");
    if (close + 1 >= text.size() || text[close + 1] != ':') bad(text, "expected ':port' after ']'");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (host.find(':') == std::string_view::npos) bad(text, "brackets are for IPv6 addresses");
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) bad(text, "expected host:port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      bad(text, "IPv6 addresses go in brackets: [::1]:80");
  }
  if (host.empty()) bad(text, "empty host");
  if (port.empty()) bad(text, "empty port");
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    bad(text, "the port must be a number from 0 to 65535");
  }
  if (auto a = parse_ip(host, static_cast<std::uint16_t>(value), text)) return *a;
  bad(text, "the host is not a numeric IPv4 or IPv6 address (use resolve() for names)");
}

SocketAddress SocketAddress::unix_path(std::string_view path) {
  sockaddr_un un{};
  if (path.empty()) bad(path, "an empty Unix socket path");
  const bool abstract = path.front() == '@';
  // A path needs its terminating NUL in sun_path; an abstract name does not.
  if (path.size() > sizeof un.sun_path - (abstract ? 0 : 1)) {
    bad(path, abstract ? "the abstract socket name is too long (max 107 bytes after '@')"
                       : "the Unix socket path is too long (max 107 bytes)");
  }
  if (!abstract && path.find('\0') != std::string_view::npos) {
    bad(path, "a NUL byte in a Unix socket path");
  }
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path, path.data(), path.size());
  if (abstract) un.sun_path[0] = '\0';  // abstract namespace
  const auto len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
  return SocketAddress(reinterpret_cast<sockaddr*>(&un), len);
}

std::uint16_t SocketAddress::port() const noexcept {
  if (is_ipv4()) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (is_ipv6()) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

std::string SocketAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_ipv4()) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf,
                sizeof buf);
    // Appended, not joined with `+`, which GCC 12 at -O3 takes for an
    // overlapping copy (a false -Wrestrict warning).
    std::string text(buf);
    text += ':';
    text += std::to_string(port());
    return text;
  }
  if (is_ipv6()) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
    std::string text = "[";
    text += buf;
    if (v6->sin6_scope_id != 0) {  // a link-local address means nothing without it
      char name[IF_NAMESIZE] = {};
      text += '%';
      text += ::if_indextoname(v6->sin6_scope_id, name) != nullptr
                  ? std::string(name)
                  : std::to_string(v6->sin6_scope_id);
    }
    text += "]:";
    text += std::to_string(port());
    return text;
  }
  if (is_unix()) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
    const std::size_t n =
        len_ > offsetof(sockaddr_un, sun_path) ? len_ - offsetof(sockaddr_un, sun_path) : 0;
    if (n == 0) return "(unnamed)";
    if (un->sun_path[0] == '\0') return std::string("@").append(un->sun_path + 1, n - 1);
    return std::string(un->sun_path, ::strnlen(un->sun_path, n));
  }
  return "(unspecified)";
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
}

}  // namespace fiberloop
