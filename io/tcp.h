// TCP: TcpListener accepts connections, TcpStream is one.
//
//   auto listener = fiberloop::TcpListener::bind(fiberloop::SocketAddress::parse("127.0.0.1:0"));
//   spawn([&] { auto conn = listener.accept(); conn.write_all("hello\n"); });
//   auto client = fiberloop::TcpStream::connect(listener.local_address());
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string_view>

#include "io/internal/socket.h"
#include "io/socket_address.h"
#include "io/socket_stream.h"

namespace fiberloop {

class TcpStream final : public SocketStream {
 public:
  TcpStream() = default;
  // Closes it; an operation under way, on any loop, throws EBADF.
  ~TcpStream() override { end_operations(); }
  TcpStream(TcpStream&&) noexcept = default;
  TcpStream& operator=(TcpStream&&) noexcept = default;

  // Connects to `address`, parking until the connection is made.
  // Throws: std::system_error naming the address ("connect 127.0.0.1:9:
  //         Connection refused"); Cancelled; TimeoutError; std::logic_error
  //         without a Loop on the calling thread (connect from a fiber).
  static TcpStream connect(const SocketAddress& address);
  // Resolves `host` (off the loop, see resolve()) and connects to the first
  // address that accepts.
  // Throws: std::system_error from resolving, or the last connect error;
  //         what connect() above throws.
  static TcpStream connect(std::string_view host, std::uint16_t port);

  // Disables (true) or enables Nagle's algorithm.
  // Throws: std::system_error naming the fd from setsockopt (also on a
  //         closed stream).
  void set_nodelay(bool on);

 private:
  friend class TcpListener;
  explicit TcpStream(internal::Socket s) noexcept : SocketStream(std::move(s)) {}
};

class TcpListener {
 public:
  struct Options {
    int backlog = SOMAXCONN;
    // SO_REUSEPORT: several listeners (one per loop, per thread) on one port,
    // the kernel spreading connections among them.
    bool reuse_port = false;
  };

  TcpListener() = default;

  // Binds (with SO_REUSEADDR) and listens. Port 0 picks a free port:
  // local_address() tells which.
  // Throws: std::system_error naming the address ("bind 127.0.0.1:80:
  //         Permission denied"); std::logic_error without a Loop on the
  //         calling thread (bind inside run(), or in a fiber).
  static TcpListener bind(const SocketAddress& address, int backlog = SOMAXCONN);
  // As bind() above, with Options (SO_REUSEPORT, backlog).
  static TcpListener bind(const SocketAddress& address, Options options);

  // The next connection, parking until one arrives.
  // Throws: std::system_error naming the fd, e.g. EMFILE when out of fds (it
  //         never spins); EBADF if closed while waiting; Cancelled; TimeoutError.
  TcpStream accept();

  // The bound address (with the port the kernel chose for port 0).
  // Throws: std::system_error naming the fd.
  SocketAddress local_address() const { return socket_.local_address(); }
  // Closes the listener, waking a fiber parked in accept(). Idempotent.
  void close() noexcept { socket_.close(); }
  // The listening socket; -1 once closed.
  int fd() const noexcept { return socket_.fd(); }

 private:
  explicit TcpListener(internal::Socket s) noexcept : socket_(std::move(s)) {}
  internal::Socket socket_;
};

}  // namespace fiberloop
