// A non-blocking socket registered with the loop. Every operation goes
// through IoHandle::retry(), the one I/O loop: EAGAIN and EINTR never leave
// here. Errors are std::system_error naming the operation and the fd.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "io/socket_address.h"

namespace fiberloop::internal {

class IoHandle;  // io/internal/io_handle.h, private to io/

// Throws std::system_error for errno `err`, its message starting with `what`
// (an operation and its fd or address: "connect 127.0.0.1:9").
[[noreturn]] void throw_io_error(int err, const std::string& what);
// wait_readable(fd) (io/wait.h), its errors naming `op`, the caller's
// operation (Process::wait). Defined in io/wait.cc.
void wait_readable_as(int fd, const char* op);

class Socket {
 public:
  Socket() noexcept;
  ~Socket();
  Socket(Socket&&) noexcept;
  Socket& operator=(Socket&&) noexcept;
  // Takes ownership of a non-blocking `fd` and registers it.
  explicit Socket(int fd);
  // A new non-blocking, close-on-exec socket.
  // Throws: std::system_error naming `what` (e.g. "socket for connect 127.0.0.1:80").
  static Socket open(int domain, int type, const std::string& what);

  bool is_open() const noexcept;
  // -1 once closed.
  int fd() const noexcept;
  // Wakes fibers waiting on it (their operation throws) and closes the fd.
  void close() noexcept;

  std::size_t read_some(std::span<char> buf);         // 0 at end of stream
  std::size_t write_some(std::span<const char> buf);  // MSG_NOSIGNAL
  // sendmsg of up to IOV_MAX buffers, MSG_NOSIGNAL; 0 if all are empty.
  std::size_t writev_some(std::span<const std::string_view> buffers);
  int accept();                           // the new fd
  void connect(const SocketAddress& to);  // non-blocking connect, done right
  // connect(2) of a datagram socket, which never waits (sets its peer).
  void connect_now(const SocketAddress& to);
  std::size_t recv_from(std::span<char> buf, SocketAddress* from);
  std::size_t send_to(std::span<const char> buf, const SocketAddress* to);
  void shutdown_write();
  // Parks until the fd may be readable (writable): for a protocol layered
  // on the socket that does its own I/O (TLS). `op`, a string literal,
  // names the caller's operation in errors and in Loop::dump().
  // Throws: as read_some.
  void wait_readable(const char* op = "wait_readable");
  void wait_writable(const char* op = "wait_writable");

  SocketAddress local_address() const;
  SocketAddress peer_address() const;
  void set_option(int level, int name, int value, const char* what);

  // What its errors call it besides its fd (IoHandle::set_label). Requires:
  // open, and no operation under way.
  void set_label(std::string label) noexcept;

  // For errors: "fd 7", or its handle's label with the fd ("stdin of pid 7
  // (cat) (fd 7)"); "fd -1" once moved from.
  std::string describe() const;
  // Throws std::system_error (EBADF) naming `op` unless open.
  void check_open(const char* op) const;
  // The fd's state (null once moved from): for a protocol layered on the
  // socket that makes its own calls (TLS's BIO), through with_fd. Its
  // address stays while the Socket moves.
  IoHandle* handle() const noexcept { return handle_.get(); }

 private:
  [[noreturn]] void fail(int err, const char* op) const;
  // On the heap: its address is the epoll token. Closed and let go of by
  // IoHandle::Release (defined in io/internal/io_handle.h, so a Socket's
  // destructor and move-assignment live in io/socket.cc).
  struct ReleaseHandle {
    void operator()(IoHandle* handle) const noexcept;
  };
  std::unique_ptr<IoHandle, ReleaseHandle> handle_;
};

}  // namespace fiberloop::internal
