// SocketAddress: an IPv4 or IPv6 address and port (or, for Unix sockets, a
// path).
//
//   auto a = fiberloop::SocketAddress::parse("127.0.0.1:8080");
//   auto b = fiberloop::SocketAddress::parse("[::1]:80");
//   a.port();        // 8080
//   b.to_string();   // "[::1]:80"
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace fiberloop {

class SocketAddress {
 public:
  // An empty address (family AF_UNSPEC).
  SocketAddress() noexcept;
  // From a sockaddr the kernel filled in.
  SocketAddress(const sockaddr* addr, socklen_t len) noexcept;

  // Parses "a.b.c.d:port" or "[ipv6]:port" (numeric only: names go through
  // resolve()); an IPv6 address may name its scope: "[fe80::1%eth0]:80"
  // (an interface name or index), and to_string() prints it back.
  // Throws: std::invalid_argument naming the text and what is wrong with it
  //         (an unknown interface too).
  static SocketAddress parse(std::string_view text);
  // A numeric host ("127.0.0.1", "::1", "fe80::1%eth0") and a port.
  // Throws: std::invalid_argument.
  static SocketAddress from_ip(std::string_view ip, std::uint16_t port);
  // A Unix socket path (at most 107 bytes); a leading '@' names an abstract
  // socket (Linux; at most 107 bytes after the '@').
  // Throws: std::invalid_argument if the path is empty, too long, or holds
  //         a NUL byte.
  static SocketAddress unix_path(std::string_view path);

  // The address family: AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC when empty.
  int family() const noexcept { return storage_.ss_family; }
  // Which family it is.
  bool is_ipv4() const noexcept { return family() == AF_INET; }
  bool is_ipv6() const noexcept { return family() == AF_INET6; }
  bool is_unix() const noexcept { return family() == AF_UNIX; }

  // The port (0 for Unix addresses).
  std::uint16_t port() const noexcept;
  // "127.0.0.1:8080", "[::1]:80", or the Unix path.
  std::string to_string() const;

  // For the socket calls: the sockaddr and its length.
  const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t size() const noexcept { return len_; }

  // Same family, address and port (or path).
  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t len_;
};

}  // namespace fiberloop
