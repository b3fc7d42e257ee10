// UdpSocket: datagrams.
//
//   auto server = fiberloop::UdpSocket::bind(fiberloop::SocketAddress::parse("127.0.0.1:0"));
//   auto [n, from] = server.recv_from(buf);
//   server.send_to({buf, n}, from);
#pragma once

#include <cstddef>
#include <span>

#include "io/internal/socket.h"
#include "io/internal/text_bytes.h"
#include "io/socket_address.h"

namespace fiberloop {

class UdpSocket {
 public:
  struct Received {
    std::size_t size;
    SocketAddress from;
  };

  UdpSocket() = default;

  // A socket bound to `address` (port 0: any free port).
  // Throws: std::system_error naming the address; std::logic_error without
  //         a Loop on the calling thread.
  static UdpSocket bind(const SocketAddress& address);

  // Sends one datagram. Returns: bytes sent.
  // Throws: std::system_error naming the fd and address; Cancelled; TimeoutError.
  std::size_t send_to(std::span<const char> data, const SocketAddress& to);
  // A string literal without its terminating NUL; not a mutable char buffer.
  template <internal::CharArrayElement C, std::size_t N>
  std::size_t send_to(C (&text)[N], const SocketAddress& to) {
    return send_to(internal::text_bytes(text), to);
  }
  // Waits for one datagram; a longer one is truncated to buf.size().
  // Throws: std::system_error naming the fd; Cancelled; TimeoutError.
  Received recv_from(std::span<char> buf);

  // Fixes the peer: send() and recv() then need no address, and datagrams
  // from elsewhere are dropped by the kernel.
  // Throws: std::system_error naming the address.
  void connect(const SocketAddress& peer);
  // To and from the connect()ed peer: one datagram each, parking until the
  // socket is ready. Throws: std::system_error naming the fd; Cancelled, TimeoutError.
  std::size_t send(std::span<const char> data);
  template <internal::CharArrayElement C, std::size_t N>
  std::size_t send(C (&text)[N]) {
    return send(internal::text_bytes(text));
  }
  std::size_t recv(std::span<char> buf);

  // The bound address. Throws: std::system_error naming the fd.
  SocketAddress local_address() const { return socket_.local_address(); }
  // Closes the socket; a fiber parked on it wakes with std::system_error.
  void close() noexcept { socket_.close(); }
  // The socket; -1 once closed.
  int fd() const noexcept { return socket_.fd(); }

 private:
  explicit UdpSocket(internal::Socket s) noexcept : socket_(std::move(s)) {}
  internal::Socket socket_;
};

}  // namespace fiberloop
