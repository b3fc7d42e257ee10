#include "io/internal/socket.h"

#include "io/internal/io_handle.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace fiberloop::internal {

using Direction = IoHandle::Direction;

namespace {
// What to do when the process has run out of fds (EMFILE, ENFILE).
const char* fd_limit_hint(int err) {
  return err == EMFILE || err == ENFILE
             ? " (out of file descriptors: raise the limit, ulimit -n / RLIMIT_NOFILE, or close "
               "idle connections)"
             : "";
}

}  // namespace

Socket::Socket(int fd) : handle_(new IoHandle(fd)) {}

void Socket::ReleaseHandle::operator()(IoHandle* handle) const noexcept {
  IoHandle::Release()(handle);
}

Socket Socket::open(int domain, int type, const std::string& what) {
  // Before the socket exists: the message names the call (bind, connect).
  if (Scheduler::current() == nullptr) [[unlikely]]
    throw_no_loop(what.c_str());
  const int fd = ::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const int err = errno;
    throw_io_error(err, "socket for " + what + fd_limit_hint(err));
  }
  return Socket(fd);
}

namespace {
// Out of line and cold: the message's string would give check_open(), on
// every read and write, a frame to set up and tear down.
[[noreturn, gnu::cold, gnu::noinline]] void throw_closed(const IoHandle* handle, const char* op) {
  if (handle != nullptr) handle->fail_closed(op);  // names its label
  throw_io_error(EBADF, std::string(op) + ": the socket is closed");
}

// What a failed datagram send adds to its message: what to do.
std::string datagram_hint(int err, std::size_t bytes) {
  if (err == EDESTADDRREQ) return " (no peer: connect() the socket first, or use send_to())";
  if (err == EMSGSIZE) {
    return " (" + std::to_string(bytes) +
           " bytes is more than one datagram carries: at most 65507 over IPv4 UDP, 65527 over "
           "IPv6, less for a Unix socket's send buffer; send less per datagram)";
  }
  return "";
}
}  // namespace

void Socket::set_label(std::string label) noexcept { handle_->set_label(std::move(label)); }

void Socket::check_open(const char* op) const {
  if (!is_open()) [[unlikely]]
    throw_closed(handle_.get(), op);
}

std::string Socket::describe() const { return handle_ ? handle_->describe() : "fd -1"; }

void Socket::fail(int err, const char* op) const {
  throw_io_error(err, std::string(op) + " " + describe());
}

// fail() for an operation that may have parked: names the fd from its
// handle, not from this Socket (a stream moved from and destroyed while the
// operation waited leaves the handle, now the new owner's, and nothing else).
[[noreturn]] void fail_on(const IoHandle& h, int err, const char* op) {
  throw_io_error(err, std::string(op) + " " + h.describe() + fd_limit_hint(err));
}

Socket::Socket() noexcept = default;
Socket::~Socket() = default;

bool Socket::is_open() const noexcept { return handle_ && !handle_->closed(); }

int Socket::fd() const noexcept { return is_open() ? handle_->fd() : -1; }

void Socket::close() noexcept {
  if (handle_) handle_->close();
}
Socket::Socket(Socket&&) noexcept = default;
Socket& Socket::operator=(Socket&&) noexcept = default;

std::size_t Socket::read_some(std::span<char> buf) {
  check_open("read");
  IoHandle& h = *handle_;
  // The readiness cache is its loop's: from another loop, read first (a
  // wait moves the stream here, and then the cache is ours).
  const bool wait_first = h.on_this_loop() && !h.may_be_readable() && !buf.empty();
  KernelOp recv;  // io_uring: a read that would wait is a RECV into `buf`
  recv.kind = KernelOp::Kind::kRecv;
  recv.buffer = buf.data();
  recv.size = static_cast<std::uint32_t>(std::min(buf.size(), KernelOp::kMaxBytes));
  const auto n = static_cast<std::size_t>(h.retry(
      Direction::kRead, "read", [&](int fd) { return ::read(fd, buf.data(), buf.size()); },
      [&](int err) { fail_on(h, err, "read"); }, 0, &recv, wait_first));
  if (h.on_this_loop() && n > 0) {
    if (n < buf.size()) h.drained();  // (read_some: streams only)
    if (n == buf.size()) h.filled();
  }
  return n;
}

std::size_t Socket::write_some(std::span<const char> buf) {
  check_open("write");
  KernelOp send;  // io_uring: a write that would wait is a SEND from `buf`
  send.kind = KernelOp::Kind::kSend;
  send.buffer = const_cast<char*>(buf.data());
  send.size = static_cast<std::uint32_t>(std::min(buf.size(), KernelOp::kMaxBytes));
  IoHandle& h = *handle_;
  return static_cast<std::size_t>(h.retry(
      Direction::kWrite, "write",
      [&](int fd) { return ::send(fd, buf.data(), buf.size(), MSG_NOSIGNAL); },
      [&](int err) { fail_on(h, err, "write"); }, 0, &send));
}

std::size_t Socket::writev_some(std::span<const std::string_view> buffers) {
  check_open("write");
  constexpr std::size_t kMaxBuffers = 64;  // a window: the caller loops
  iovec iov[kMaxBuffers];
  std::size_t count = 0;
  for (std::string_view b : buffers) {
    if (count == kMaxBuffers) break;
    if (b.empty()) continue;
    iov[count++] = {const_cast<char*>(b.data()), b.size()};
  }
  if (count == 0) return 0;
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = count;
  KernelOp send;  // io_uring: a write that would wait is a SENDMSG of `msg`
  send.kind = KernelOp::Kind::kSendMsg;
  send.buffer = &msg;
  IoHandle& h = *handle_;
  return static_cast<std::size_t>(h.retry(
      Direction::kWrite, "write", [&](int fd) { return ::sendmsg(fd, &msg, MSG_NOSIGNAL); },
      [&](int err) { fail_on(h, err, "write"); }, 0, &send));
}

void Socket::wait_readable(const char* op) {
  check_open(op);
  handle_->wait(Direction::kRead, op);
}

void Socket::wait_writable(const char* op) {
  check_open(op);
  handle_->wait(Direction::kWrite, op);
}

int Socket::accept() {
  check_open("accept");
  // (The handle, not this Socket: a C++ move of the listener while this
  // fiber queues leaves this object empty.)
  IoHandle& h = *handle_;
  IoHandle::Turn turn(h, "accept");  // behind other acceptors of this loop
  KernelOp accept;                   // io_uring: an accept that would wait is an ACCEPT
  accept.kind = KernelOp::Kind::kAccept;
  // ECONNABORTED: the client gave up before we got to it: the next one.
  // EMFILE, ENFILE, ENOBUFS...: reported, never spun on.
  return h.retry(
      Direction::kRead, "accept",
      [&](int fd) { return ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC); },
      [&](int err) { fail_on(h, err, "accept"); }, ECONNABORTED, &accept);
}

void Socket::connect(const SocketAddress& to) {
  check_open("connect");
  const std::string what = "connect " + to.to_string();
  if (handle_->with_fd("connect", [&](int fd) { return ::connect(fd, to.get(), to.size()); }) ==
      0) {
    return;
  }
  if (errno == EAGAIN && to.family() == AF_UNIX) {
    // A Unix socket does not queue a connect past the listener's backlog
    // (Go fails it the same way).
    throw_io_error(EAGAIN, what +
                               " (the listener's backlog is full: it accepts too slowly; retry "
                               "later, or listen with a larger backlog)");
  }
  if (errno != EINPROGRESS && errno != EINTR) throw_io_error(errno, what);
  // In progress: writable means done, one way or the other; SO_ERROR says
  // which. (On io_uring the wait is a POLL operation: a CONNECT operation
  // reports in-progress states as errors on some kernels, where SO_ERROR
  // is exact on all.)
  for (;;) {
    handle_->wait(Direction::kWrite, "connect");
    int err = 0;
    socklen_t len = sizeof err;
    if (handle_->with_fd("connect", [&](int fd) {
          return ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        }) != 0) {
      err = errno;
    }
    if (err == 0) {
      // Writable with no error can also be a spurious wake-up: check we are connected.
      sockaddr_storage peer{};
      socklen_t peer_len = sizeof peer;
      if (handle_->with_fd("connect", [&](int fd) {
            return ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len);
          }) == 0) {
        return;
      }
      if (errno != ENOTCONN) throw_io_error(errno, what);
      continue;
    }
    if (err != EINPROGRESS && err != EALREADY) throw_io_error(err, what);
  }
}

void Socket::connect_now(const SocketAddress& to) {
  check_open("connect");
  if (handle_->with_fd("connect", [&](int fd) { return ::connect(fd, to.get(), to.size()); }) !=
      0) {
    const int err = errno;  // before the message is built
    throw_io_error(err, "connect " + to.to_string());
  }
}

std::size_t Socket::recv_from(std::span<char> buf, SocketAddress* from) {
  check_open("recv");
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  IoHandle& h = *handle_;
  const ssize_t n = h.retry(
      Direction::kRead, "recv",
      [&](int fd) {
        len = sizeof addr;
        return ::recvfrom(fd, buf.data(), buf.size(), 0,
                          from ? reinterpret_cast<sockaddr*>(&addr) : nullptr,
                          from ? &len : nullptr);
      },
      [&](int err) { fail_on(h, err, "recv"); });
  if (from) *from = SocketAddress(reinterpret_cast<sockaddr*>(&addr), len);
  return static_cast<std::size_t>(n);
}

std::size_t Socket::send_to(std::span<const char> buf, const SocketAddress* to) {
  check_open("send");
  return static_cast<std::size_t>(handle_->retry(
      Direction::kWrite, "send",
      [&](int fd) {
        return ::sendto(fd, buf.data(), buf.size(), MSG_NOSIGNAL, to ? to->get() : nullptr,
                        to ? to->size() : 0);
      },
      [&](int err) {
        throw_io_error(err, "send fd " + std::to_string(handle_->fd()) +
                                (to ? " to " + to->to_string() : std::string()) +
                                datagram_hint(err, buf.size()));
      }));
}

void Socket::shutdown_write() {
  check_open("shutdown");
  if (handle_->with_fd("shutdown", [](int fd) { return ::shutdown(fd, SHUT_WR); }) != 0) {
    fail(errno, "shutdown");
  }
}

SocketAddress Socket::local_address() const {
  check_open("getsockname");
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (handle_->with_fd("getsockname", [&](int fd) {
        return ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
      }) != 0) {
    fail(errno, "getsockname");
  }
  return SocketAddress(reinterpret_cast<sockaddr*>(&addr), len);
}

SocketAddress Socket::peer_address() const {
  check_open("getpeername");
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (handle_->with_fd("getpeername", [&](int fd) {
        return ::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len);
      }) != 0) {
    fail(errno, "getpeername");
  }
  return SocketAddress(reinterpret_cast<sockaddr*>(&addr), len);
}

void Socket::set_option(int level, int name, int value, const char* what) {
  check_open(what);
  if (handle_->with_fd(
          what, [&](int fd) { return ::setsockopt(fd, level, name, &value, sizeof value); }) != 0) {
    fail(errno, what);
  }
}

}  // namespace fiberloop::internal
