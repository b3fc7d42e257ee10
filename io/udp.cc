#include "io/udp.h"

#include <sys/socket.h>

#include <cerrno>

namespace fiberloop {

UdpSocket UdpSocket::bind(const SocketAddress& address) {
  const std::string what = "bind " + address.to_string();
  internal::Socket s = internal::Socket::open(address.family(), SOCK_DGRAM, what);
  if (::bind(s.fd(), address.get(), address.size()) != 0) internal::throw_io_error(errno, what);
  return UdpSocket(std::move(s));
}

std::size_t UdpSocket::send_to(std::span<const char> data, const SocketAddress& to) {
  return socket_.send_to(data, &to);
}

UdpSocket::Received UdpSocket::recv_from(std::span<char> buf) {
  Received r{0, {}};
  r.size = socket_.recv_from(buf, &r.from);
  return r;
}

void UdpSocket::connect(const SocketAddress& peer) { socket_.connect_now(peer); }

std::size_t UdpSocket::send(std::span<const char> data) { return socket_.send_to(data, nullptr); }

std::size_t UdpSocket::recv(std::span<char> buf) { return socket_.recv_from(buf, nullptr); }

}  // namespace fiberloop
