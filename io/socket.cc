#include "io/internal/socket.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace fiberloop::internal {

using Direction = IoHandle::Direction;

Socket::Socket(int fd) : handle_(std::make_unique<IoHandle>(fd)) {}

Socket Socket::open(int domain, int type, const std::string& what) {
  const int fd = ::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_io_error(errno, "socket for " + what);
  return Socket(fd);
}

void Socket::check_open(const char* op) const {
  if (!is_open()) throw_io_error(EBADF, std::string(op) + ": the socket is closed");
}

void Socket::fail(int err, const char* op) const {
  throw_io_error(err, std::string(op) + " fd " + std::to_string(handle_ ? handle_->fd() : -1));
}

std::size_t Socket::read_some(std::span<char> buf) {
  check_open("read");
  for (;;) {
    const ssize_t n = ::read(handle_->fd(), buf.data(), buf.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EAGAIN) {
      handle_->wait(Direction::kRead, "read");
    } else if (errno != EINTR) {
      fail(errno, "read");
    }
  }
}

std::size_t Socket::write_some(std::span<const char> buf) {
  check_open("write");
  for (;;) {
    const ssize_t n = ::send(handle_->fd(), buf.data(), buf.size(), MSG_NOSIGNAL);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EAGAIN) {
      handle_->wait(Direction::kWrite, "write");
    } else if (errno != EINTR) {
      fail(errno, "write");
    }
  }
}

int Socket::accept() {
  check_open("accept");
  for (;;) {
    const int fd = ::accept4(handle_->fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return fd;
    switch (errno) {
      case EAGAIN:
        handle_->wait(Direction::kRead, "accept");
        break;
      case EINTR:
      case ECONNABORTED:  // the client gave up before we got to it: next one
        break;
      default:  // EMFILE, ENFILE, ENOBUFS...: reported, never spun on
        fail(errno, "accept");
    }
  }
}

void Socket::connect(const SocketAddress& to) {
  check_open("connect");
  const std::string what = "connect " + to.to_string();
  if (::connect(handle_->fd(), to.get(), to.size()) == 0) return;
  if (errno != EINPROGRESS && errno != EINTR) throw_io_error(errno, what);
  // In progress: writable means done, one way or the other; SO_ERROR says which.
  for (;;) {
    handle_->wait(Direction::kWrite, "connect");
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(handle_->fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0) {
      // Writable with no error can also be a spurious wake-up: check we are connected.
      sockaddr_storage peer{};
      socklen_t peer_len = sizeof peer;
      if (::getpeername(handle_->fd(), reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0) return;
      if (errno != ENOTCONN) throw_io_error(errno, what);
      continue;
    }
    if (err != EINPROGRESS && err != EALREADY) throw_io_error(err, what);
  }
}

std::size_t Socket::recv_from(std::span<char> buf, SocketAddress* from) {
  check_open("recv");
  for (;;) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    const ssize_t n =
        ::recvfrom(handle_->fd(), buf.data(), buf.size(), 0,
                   from ? reinterpret_cast<sockaddr*>(&addr) : nullptr, from ? &len : nullptr);
    if (n >= 0) {
      if (from) *from = SocketAddress(reinterpret_cast<sockaddr*>(&addr), len);
      return static_cast<std::size_t>(n);
    }
    if (errno == EAGAIN) {
      handle_->wait(Direction::kRead, "recv");
    } else if (errno != EINTR) {
      fail(errno, "recv");
    }
  }
}

std::size_t Socket::send_to(std::span<const char> buf, const SocketAddress* to) {
  check_open("send");
  for (;;) {
    const ssize_t n = ::sendto(handle_->fd(), buf.data(), buf.size(), MSG_NOSIGNAL,
                               to ? to->get() : nullptr, to ? to->size() : 0);
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EAGAIN) {
      handle_->wait(Direction::kWrite, "send");
    } else if (errno != EINTR) {
      throw_io_error(errno, "send fd " + std::to_string(handle_->fd()) +
                                (to ? " to " + to->to_string() : std::string()));
    }
  }
}

void Socket::shutdown_write() {
  check_open("shutdown");
  if (::shutdown(handle_->fd(), SHUT_WR) != 0) fail(errno, "shutdown");
}

SocketAddress Socket::local_address() const {
  check_open("getsockname");
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(handle_->fd(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    fail(errno, "getsockname");
  }
  return SocketAddress(reinterpret_cast<sockaddr*>(&addr), len);
}

SocketAddress Socket::peer_address() const {
  check_open("getpeername");
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getpeername(handle_->fd(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    fail(errno, "getpeername");
  }
  return SocketAddress(reinterpret_cast<sockaddr*>(&addr), len);
}

void Socket::set_option(int level, int name, int value, const char* what) {
  check_open(what);
  if (::setsockopt(handle_->fd(), level, name, &value, sizeof value) != 0) fail(errno, what);
}

}  // namespace fiberloop::internal
