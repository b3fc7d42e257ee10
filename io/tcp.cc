#include "io/tcp.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <system_error>

#include "io/resolve.h"

namespace fiberloop {

TcpStream TcpStream::connect(const SocketAddress& address) {
  internal::Socket s =
      internal::Socket::open(address.family(), SOCK_STREAM, "connect " + address.to_string());
  s.connect(address);
  return TcpStream(std::move(s));
}

TcpStream TcpStream::connect(std::string_view host, std::uint16_t port) {
  const std::vector<SocketAddress> addresses = resolve(host, port);
  std::exception_ptr last;
  for (const SocketAddress& a : addresses) {
    try {
      return connect(a);
    } catch (const std::system_error&) {
      last = std::current_exception();
    }
  }
  std::rethrow_exception(last);  // resolve() never returns an empty list
}

void TcpStream::set_nodelay(bool on) {
  socket_.set_option(IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "setsockopt TCP_NODELAY");
}

TcpListener TcpListener::bind(const SocketAddress& address, int backlog) {
  Options options;
  options.backlog = backlog;
  return bind(address, options);
}

TcpListener TcpListener::bind(const SocketAddress& address, Options options) {
  const std::string what = "bind " + address.to_string();
  internal::Socket s = internal::Socket::open(address.family(), SOCK_STREAM, what);
  s.set_option(SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt SO_REUSEADDR");
  if (options.reuse_port) s.set_option(SOL_SOCKET, SO_REUSEPORT, 1, "setsockopt SO_REUSEPORT");
  if (::bind(s.fd(), address.get(), address.size()) != 0) internal::throw_io_error(errno, what);
  if (::listen(s.fd(), options.backlog) != 0) {
    const int err = errno;  // before the message is built
    internal::throw_io_error(err, "listen " + address.to_string());
  }
  return TcpListener(std::move(s));
}

TcpStream TcpListener::accept() { return TcpStream(internal::Socket(socket_.accept())); }

}  // namespace fiberloop
