// Stream: a connected byte stream, the common part of TcpStream and
// UnixStream.
//
//   char buf[4096];
//   while (std::size_t n = stream.read(buf)) stream.write_all({buf, n});   // echo
//
// Every operation that must wait parks only the calling fiber, and honours
// cancellation and with_timeout(). One fiber may read while another writes;
// two fibers reading (or writing) at once is a std::logic_error. Closing the
// stream wakes fibers waiting on it: their operation throws
// std::system_error (EBADF). Writes never raise SIGPIPE: a closed peer is an
// EPIPE or ECONNRESET std::system_error.
#pragma once

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "io/internal/socket.h"
#include "io/socket_address.h"

namespace fiberloop {

// Thrown by read_exact() when the stream ends first.
class EndOfStream : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Stream {
 public:
  Stream(Stream&&) noexcept = default;
  Stream& operator=(Stream&&) noexcept = default;
  ~Stream() = default;

  // Reads what is available (at least one byte), waiting until something is.
  // Returns: the byte count; 0 at end of stream (the peer shut down writing).
  // Throws: std::system_error naming the fd (ECONNRESET, EBADF if closed while
  //         waiting...); Cancelled; TimeoutError.
  std::size_t read(std::span<char> buf) { return socket_.read_some(buf); }

  // Reads exactly buf.size() bytes.
  // Throws: EndOfStream (saying how many bytes came) if the stream ends first;
  //         what read() throws.
  void read_exact(std::span<char> buf);

  // Writes some of `buf` (at least one byte), waiting for room in the send
  // buffer. Returns: the byte count.
  // Throws: std::system_error naming the fd (EPIPE, ECONNRESET...); Cancelled;
  //         TimeoutError.
  std::size_t write(std::span<const char> buf) { return socket_.write_some(buf); }

  // Writes all of `data`. Throws: what write() throws.
  void write_all(std::string_view data);

  // Sends end of stream to the peer; reading still works.
  void shutdown_write() { socket_.shutdown_write(); }

  // Closes the stream (wakes fibers waiting on it). Idempotent.
  void close() noexcept { socket_.close(); }
  // False once closed (or moved from).
  bool is_open() const noexcept { return socket_.is_open(); }

  // The two ends of the connection.
  // Throws: std::system_error (getpeername/getsockname) naming the fd.
  SocketAddress peer_address() const { return socket_.peer_address(); }
  SocketAddress local_address() const { return socket_.local_address(); }
  // The fd, or -1 once closed. fiberloop owns it: do not close it yourself.
  int fd() const noexcept { return socket_.fd(); }

 protected:
  Stream() = default;
  explicit Stream(internal::Socket socket) noexcept : socket_(std::move(socket)) {}
  internal::Socket socket_;
};

}  // namespace fiberloop
