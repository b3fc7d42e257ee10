// Unix domain sockets: the same shape as TCP, over filesystem paths (or
// abstract names starting with '@').
//
//   auto listener = fiberloop::UnixListener::bind("/tmp/app.sock");
//   auto client = fiberloop::UnixStream::connect("/tmp/app.sock");
#pragma once

#include <sys/socket.h>

#include <string_view>

#include "io/internal/socket.h"
#include "io/socket_stream.h"

namespace fiberloop {

class UnixStream final : public SocketStream {
 public:
  UnixStream() = default;
  // Closes it; an operation under way, on any loop, throws EBADF.
  ~UnixStream() override { end_operations(); }
  UnixStream(UnixStream&&) noexcept = default;
  UnixStream& operator=(UnixStream&&) noexcept = default;
  // Throws: std::system_error naming the path ("connect /tmp/x.sock: No such
  //         file or directory"); Cancelled; TimeoutError;
  //         std::invalid_argument for an empty path or one too long for a
  //         socket address; std::logic_error without a Loop on the thread.
  static UnixStream connect(std::string_view path);

 private:
  friend class UnixListener;
  explicit UnixStream(internal::Socket s) noexcept : SocketStream(std::move(s)) {}
};

class UnixListener {
 public:
  UnixListener() = default;
  // Binds and listens. A path that exists already is an error (EADDRINUSE):
  // remove a stale socket file first.
  // Throws: std::system_error naming the path (EADDRINUSE for a path that
  //         exists: a socket file left by an earlier run must be unlinked
  //         first); std::invalid_argument, std::logic_error as connect().
  static UnixListener bind(std::string_view path, int backlog = SOMAXCONN);

  // As TcpListener::accept().
  UnixStream accept();

  // The bound path. Throws: std::system_error naming the fd.
  SocketAddress local_address() const { return socket_.local_address(); }
  // Closes the socket; a fiber parked in accept() wakes with std::system_error.
  void close() noexcept { socket_.close(); }
  // The listening socket; -1 once closed.
  int fd() const noexcept { return socket_.fd(); }

 private:
  explicit UnixListener(internal::Socket s) noexcept : socket_(std::move(s)) {}
  internal::Socket socket_;
};

}  // namespace fiberloop
