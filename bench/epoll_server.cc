// The baseline: a plain edge-triggered epoll server, no fibers, one thread.
// What one core can do for this work; fiberloop's servers are measured
// against it in the same pass.
//   epoll_server --port 7000 --mode echo|http
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::string_view kHttpResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nHello, world!\n";

struct Conn {
  int fd = -1;
  std::string out;      // bytes not yet written
  std::string partial;  // http: the tail of an incomplete request
};

volatile sig_atomic_t stopping = 0;

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
  ::signal(SIGTERM, [](int) { stopping = 1; });
  ::signal(SIGINT, [](int) { stopping = 1; });
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(lfd, 4096) != 0) {
    std::perror("epoll_server: bind/listen");
    return 1;
  }
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.ptr = nullptr;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::printf("epoll_server: listening on 127.0.0.1:%d (%s)\n", port, http ? "http" : "echo");
  std::fflush(stdout);
  epoll_event events[256];
  while (!stopping) {
    const int n = ::epoll_wait(ep, events, 256, 100);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {  // the listener
        for (;;) {
          const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          auto* c = new Conn{fd, {}, {}};
          epoll_event cev{};
          cev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
          cev.data.ptr = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
        }
        continue;
      }
      auto* c = static_cast<Conn*>(events[i].data.ptr);
      bool alive = true;
      if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) alive = serve(*c, http);
      alive = flush(*c) && alive;
      if (!alive) {
        ::close(c->fd);
        delete c;
      }
    }
  }
  return 0;
}
