// SocketStream: a Stream over a connected socket that fiberloop owns, the
// common part of TcpStream, UnixStream and a Process's pipes. Adds what a
// socket has and other streams may not: its fd and its two addresses.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "io/internal/socket.h"
#include "io/socket_address.h"
#include "io/stream.h"

namespace fiberloop {

class SocketStream : public Stream {
 public:
  SocketStream() = default;
  // (Each final class's destructor calls end_operations() first.)
  ~SocketStream() override = default;
  SocketStream(SocketStream&&) noexcept = default;
  SocketStream& operator=(SocketStream&&) noexcept = default;

  // shutdown(SHUT_WR): the peer reads end of stream; reading still works.
  // Throws: std::system_error naming the fd.
  void shutdown_write() final { socket_.shutdown_write(); }
  void close() noexcept final { socket_.close(); }
  bool is_open() const noexcept final { return socket_.is_open(); }
  // "fd 7" (a Process's pipe: "stdin of pid 7 (cat) (fd 7)").
  std::string describe() const override { return socket_.describe(); }

  // The two ends of the connection.
  // Throws: std::system_error (getpeername/getsockname) naming the fd.
  SocketAddress peer_address() const { return socket_.peer_address(); }
  SocketAddress local_address() const { return socket_.local_address(); }
  // The fd, or -1 once closed. fiberloop owns it: do not close it yourself.
  int fd() const noexcept { return socket_.fd(); }

  // Parks until the socket may be readable (writable), for a protocol that
  // does its own I/O on fd() (TLS does): a read may still find nothing.
  // Honours cancellation and with_timeout(), not the stream's deadlines.
  // Throws: std::system_error (EBADF) if closed meanwhile; Cancelled;
  //         TimeoutError; std::logic_error if another fiber waits likewise.
  void wait_readable() { socket_.wait_readable(); }
  void wait_writable() { socket_.wait_writable(); }

 protected:
  explicit SocketStream(internal::Socket socket) noexcept : socket_(std::move(socket)) {}
  // TLS makes its own calls on the socket (io/tls_bio.cc).
  friend class TlsStream;

  // Final, so that calls through a TcpStream or UnixStream are direct.
  std::size_t read_some(std::span<char> buf) final { return socket_.read_some(buf); }
  std::size_t write_some(std::span<const char> buf) final { return socket_.write_some(buf); }
  std::size_t writev_some(std::span<const std::string_view> buffers) final {
    return socket_.writev_some(buffers);
  }

  internal::Socket socket_;
};

}  // namespace fiberloop
