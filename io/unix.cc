#include "io/unix.h"

#include <sys/socket.h>

#include <cerrno>
#include <string>

namespace fiberloop {

UnixStream UnixStream::connect(std::string_view path) {
  const SocketAddress address = SocketAddress::unix_path(path);
  internal::Socket s = internal::Socket::open(AF_UNIX, SOCK_STREAM, "connect " + std::string(path));
  s.connect(address);
  return UnixStream(std::move(s));
}

UnixListener UnixListener::bind(std::string_view path, int backlog) {
  const SocketAddress address = SocketAddress::unix_path(path);
  const std::string what = "bind " + std::string(path);
  internal::Socket s = internal::Socket::open(AF_UNIX, SOCK_STREAM, what);
  if (::bind(s.fd(), address.get(), address.size()) != 0) {
    const int err = errno;  // before the message is built
    internal::throw_io_error(
        err, err == EADDRINUSE && !path.starts_with('@')
                 ? what +
                       " (a file is there: a socket left by an earlier run? unlink it first "
                       "if nothing listens on it)"
                 : what);
  }
  if (::listen(s.fd(), backlog) != 0) {
    const int err = errno;  // before the message is built
    internal::throw_io_error(err, "listen " + std::string(path));
  }
  return UnixListener(std::move(s));
}

UnixStream UnixListener::accept() { return UnixStream(internal::Socket(socket_.accept())); }

}  // namespace fiberloop
