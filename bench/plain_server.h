// What the plain (fiberless) servers of bench/ share: a non-blocking
// listener on 127.0.0.1, and one thread's edge-triggered epoll loop that
// accepts every pending connection and hands each connection's events to
// the server, until SIGTERM or SIGINT; or N such threads, each with its own
// listener on the port (SO_REUSEPORT: the kernel spreads the connections,
// as fiberloop's servers do on N loops) and its own epoll set. Each server
// is what is left: its connection state and what it does on an event.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

namespace fiberloop::bench {

// Set by SIGTERM or SIGINT (lock-free, so safe in a handler), or when a
// thread cannot listen; every serving thread sees it within 100 ms.
inline std::atomic<bool> plain_server_stopping{false};
static_assert(std::atomic<bool>::is_always_lock_free);

// Listens on 127.0.0.1:`port` (with SO_REUSEPORT when `reuse_port`) and
// serves its connections on the calling thread until SIGTERM or SIGINT:
// accepts each one non-blocking, registers it (all directions,
// edge-triggered) with the token `accepted(fd)` returns, and calls
// `ready(token, epoll events)` for each of its events, which closes the
// connection itself when it is over. `listening()` runs once the port
// accepts. Returns the exit status.
template <class Accepted, class Ready, class Listening>
int serve_plain_thread(const char* name, int port, bool reuse_port, Accepted& accepted,
                       Ready& ready, Listening listening) {
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) ::setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(lfd, 4096) != 0) {
    std::fprintf(stderr, "%s: ", name);
    std::perror("bind/listen");
    plain_server_stopping = true;  // the other threads, if any, stop too
    return 1;
  }
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.ptr = nullptr;  // the listener is the one null token
  ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  listening();
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

// Serves on `threads` threads (serve_plain_thread above, each with its own
// listener: `accepted` and `ready` are called on the thread that accepted
// the connection, and must keep per-thread state). Says "<name>: listening
// on 127.0.0.1:PORT (<mode>)" once the calling thread listens (the report
// waits for the port, not the line). Returns the exit status: the first
// thread's failure, if any.
template <class Accepted, class Ready>
int run_plain_server(const char* name, int port, const char* mode, Accepted accepted, Ready ready,
                     int threads = 1) {
  ::signal(SIGTERM, [](int) { plain_server_stopping = true; });
  ::signal(SIGINT, [](int) { plain_server_stopping = true; });
  ::signal(SIGPIPE, SIG_IGN);  // a library that writes with write(2) (OpenSSL's BIO)
  const auto say = [&] {
    std::printf("%s: listening on 127.0.0.1:%d (%s)\n", name, port, mode);
    std::fflush(stdout);
  };
  if (threads <= 1) return serve_plain_thread(name, port, false, accepted, ready, say);
  std::vector<std::thread> others;
  std::vector<int> status(static_cast<std::size_t>(threads), 0);
  for (int i = 1; i < threads; ++i) {
    others.emplace_back([&, i] {
      status[static_cast<std::size_t>(i)] =
          serve_plain_thread(name, port, true, accepted, ready, [] {});
    });
  }
  status[0] = serve_plain_thread(name, port, true, accepted, ready, say);
  for (std::thread& t : others) t.join();
  for (const int s : status) {
    if (s != 0) return s;
  }
  return 0;
}

}  // namespace fiberloop::bench
