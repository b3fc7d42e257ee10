// What the plain (fiberless) servers of bench/ share: a non-blocking
// listener on 127.0.0.1, and one thread's edge-triggered epoll loop that
// accepts every pending connection and hands each connection's events to
// the server, until SIGTERM or SIGINT. Each server is what is left: its
// connection state and what it does on an event.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>

namespace fiberloop::bench {

inline volatile sig_atomic_t plain_server_stopping = 0;

// Listens on 127.0.0.1:`port`, accepts each connection non-blocking, and
// registers it (all directions, edge-triggered) with the token
// `accepted(fd)` returns; calls `ready(token, epoll events)` for each of
// its events, which closes the connection itself when it is over. Says
// "<name>: listening on 127.0.0.1:PORT (<mode>)" once listening (the
// report waits for the port, not the line). Returns the exit status.
template <class Accepted, class Ready>
int run_plain_server(const char* name, int port, const char* mode, Accepted accepted, Ready ready) {
  ::signal(SIGTERM, [](int) { plain_server_stopping = 1; });
  ::signal(SIGINT, [](int) { plain_server_stopping = 1; });
  ::signal(SIGPIPE, SIG_IGN);  // a library that writes with write(2) (OpenSSL's BIO)
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(lfd, 4096) != 0) {
    std::fprintf(stderr, "%s: ", name);
    std::perror("bind/listen");
    return 1;
  }
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.ptr = nullptr;  // the listener is the one null token
  ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::printf("%s: listening on 127.0.0.1:%d (%s)\n", name, port, mode);
  std::fflush(stdout);
  epoll_event events[256];
  while (!plain_server_stopping) {
    const int n = ::epoll_wait(ep, events, 256, 100);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {
        for (;;) {
          const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          epoll_event cev{};
          cev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
          cev.data.ptr = accepted(fd);
          ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
        }
        continue;
      }
      ready(events[i].data.ptr, events[i].events);
    }
  }
  return 0;
}

}  // namespace fiberloop::bench
