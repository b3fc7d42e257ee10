// The baseline: a plain edge-triggered epoll server, no fibers, one thread.
// What one core can do for this work; fiberloop's servers are measured
// against it in the same pass.
//   epoll_server --port 7000 --mode echo|http
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "bench/plain_server.h"

namespace {

constexpr std::string_view kHttpResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nHello, world!\n";

struct Conn {
  int fd = -1;
  std::string out;      // bytes not yet written
  std::string partial;  // http: the tail of an incomplete request
};

// Writes what it can; returns false if the connection is dead.
bool flush(Conn& c) {
  while (!c.out.empty()) {
    const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c.out.erase(0, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EAGAIN) {
      return true;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

// Reads all that is there and queues the replies; false if it is over.
bool serve(Conn& c, bool http) {
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EINTR ? (errno == EAGAIN) : false;
    if (!http) {
      c.out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    c.partial.append(buf, static_cast<std::size_t>(n));
    std::size_t pos = 0, end;
    while ((end = c.partial.find("\r\n\r\n", pos)) != std::string::npos) {
      c.out += kHttpResponse;
      pos = end + 4;
    }
    c.partial.erase(0, pos);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int port = 7000;
  bool http = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--port")) port = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--mode")) http = !std::strcmp(argv[i + 1], "http");
  }
  return fiberloop::bench::run_plain_server(
      "epoll_server", port, http ? "http" : "echo",
      [](int fd) -> void* {
        return new Conn{fd, {}, {}};
      },
      [http](void* token, std::uint32_t events) {
        auto* c = static_cast<Conn*>(token);
        bool alive = true;
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) alive = serve(*c, http);
        alive = flush(*c) && alive;
        if (!alive) {
          ::close(c->fd);
          delete c;
        }
      });
}
