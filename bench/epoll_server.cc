// The baseline: a plain edge-triggered epoll server, no fibers, one thread,
// as strong as simple means allow: one epoll_ctl per connection, a read
// shorter than the buffer taken as "drained" (one read and one send per
// request), replies sent from the stack, connection state in a table by fd.
// What one core can do for this work; fiberloop's servers are measured
// against it in the same pass. With --threads N, N such servers share the
// port (SO_REUSEPORT), as fiberloop's servers do on N loops.
//   epoll_server --port 7000 --mode echo|http [--threads N]
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "bench/plain_server.h"

namespace {

constexpr std::string_view kHttpResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nHello, world!\n";
constexpr std::size_t kBuffer = 16384;

// A connection's state, in a table indexed by fd: no allocation per
// connection once the table has grown. One table per serving thread (a
// connection stays on the thread that accepted it). The strings stay empty (and
// unallocated) unless a reply or a request does not fit in one go.
struct Conn {
  int fd = -1;
  std::string out;      // bytes not yet written
  std::string partial;  // http: the tail of an incomplete request
};
thread_local std::vector<Conn> conns;

// Sends `data` after what is queued; queues what the socket does not take.
// Returns: false if the connection is dead.
bool send_or_queue(Conn& c, std::string_view data) {
  if (c.out.empty()) {
    ssize_t n;
    do {
      n = ::send(c.fd, data.data(), data.size(), MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN) return false;
    data.remove_prefix(n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  c.out.append(data);
  return true;
}

// Writes what is queued; false if the connection is dead.
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

// The replies to the complete requests in `in`, written at once; the tail
// of an incomplete one is kept.
bool answer_http(Conn& c, std::string_view in) {
  char replies[kBuffer];
  std::size_t size = 0;
  std::size_t pos = 0, end;
  while ((end = in.find("\r\n\r\n", pos)) != std::string_view::npos) {
    if (size + kHttpResponse.size() > sizeof replies) {
      if (!send_or_queue(c, {replies, size})) return false;
      size = 0;
    }
    std::memcpy(replies + size, kHttpResponse.data(), kHttpResponse.size());
    size += kHttpResponse.size();
    pos = end + 4;
  }
  c.partial.assign(in.substr(pos));
  return size == 0 || send_or_queue(c, {replies, size});
}

// Reads what is there and answers it; false if it is over. A read shorter
// than the buffer took everything: the edge-triggered registration reports
// whatever arrives after it, so no second read to see EAGAIN.
bool serve(Conn& c, bool http) {
  char buf[kBuffer];
  for (;;) {
    const ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EINTR ? (errno == EAGAIN) : false;
    const std::string_view got(buf, static_cast<std::size_t>(n));
    if (!http) {
      if (!send_or_queue(c, got)) return false;
    } else if (c.partial.empty()) {
      if (!answer_http(c, got)) return false;
    } else {
      c.partial.append(got);
      const std::string in = std::move(c.partial);
      if (!answer_http(c, in)) return false;
    }
    if (static_cast<std::size_t>(n) < sizeof buf) return true;
  }
}

}  // namespace

int main(int argc, char** argv) {
  int port = 7000;
  bool http = false;
  int threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--port")) port = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--mode")) http = !std::strcmp(argv[i + 1], "http");
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
  }
  if (threads < 1) {
    std::fprintf(stderr, "epoll_server: --threads takes a count >= 1\n");
    return 2;
  }
  return fiberloop::bench::run_plain_server(
      "epoll_server", port, http ? "http" : "echo",
      [](int fd) -> void* {
        // The token is fd + 1 (never null, the listener's): the table may
        // grow, so no pointers into it.
        if (static_cast<std::size_t>(fd) >= conns.size()) conns.resize(fd + 1024);
        conns[fd].fd = fd;
        return reinterpret_cast<void*>(static_cast<std::uintptr_t>(fd) + 1);
      },
      [http](void* token, std::uint32_t events) {
        Conn* c = &conns[reinterpret_cast<std::uintptr_t>(token) - 1];
        bool alive = true;
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) alive = serve(*c, http);
        alive = flush(*c) && alive;
        if (!alive) {
          ::close(c->fd);  // (closing removes it from the epoll set: no EPOLL_CTL_DEL)
          c->fd = -1;
          c->out.clear();
          c->partial.clear();
        }
      },
      threads);
}
