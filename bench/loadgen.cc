#include "bench/loadgen.h"

#include "bench/load_run.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace fiberloop::bench {
namespace {

using Clock = LoadRun::Clock;

constexpr std::string_view kHttpRequest = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
const std::string kEchoRequest(64, 'x');

struct Client {
  int fd = -1;
  bool connecting = false;
  std::size_t expect = 0;  // bytes of response still due (echo); 0 = parse (http)
  std::string in;
  Clock::time_point sent_at;
};

// The bytes of a whole HTTP response at the start of `in`, or 0 if not yet.
std::size_t http_response_size(const std::string& in) {
  const std::size_t head = in.find("\r\n\r\n");
  if (head == std::string::npos) return 0;
  std::size_t length = 0;
  const std::size_t cl = in.find("Content-Length: ");
  if (cl != std::string::npos && cl < head)
    length = std::strtoul(in.c_str() + cl + 16, nullptr, 10);
  return in.size() >= head + 4 + length ? head + 4 + length : 0;
}

}  // namespace

int connect_loopback(std::uint16_t port, bool* in_progress) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  *in_progress =
      ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno == EINPROGRESS;
  return fd;
}

const char* workload_name(Workload w) {
  switch (w) {
    case Workload::kEcho:
      return "echo 64 B";
    case Workload::kHttp:
      return "HTTP hello";
    case Workload::kChurn:
      return "connect+1 round trip+close";
    case Workload::kTlsEcho:
      return "TLS echo 1 KiB";
    case Workload::kTlsHandshake:
      return "TLS handshake+1 B echo";
  }
  return "?";
}

LoadResult run_load(const LoadOptions& o) {
  if (o.workload == Workload::kTlsEcho || o.workload == Workload::kTlsHandshake) {
    return run_tls_load(o);
  }
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<Client> clients(static_cast<std::size_t>(o.connections));
  std::optional<LoadRun> run;  // timed from once every connection is under way
  const std::string_view request = o.workload == Workload::kHttp ? kHttpRequest : kEchoRequest;

  auto start_connection = [&](std::size_t i) {
    Client& c = clients[i];
    c.fd = connect_loopback(o.port, &c.connecting);
    c.in.clear();
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  };
  auto send_request = [&](Client& c) {
    c.sent_at = Clock::now();
    c.expect = o.workload == Workload::kHttp ? 0 : kEchoRequest.size();
    if (::send(c.fd, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      run->failed();
    }
  };
  auto restart = [&](std::size_t i) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, clients[i].fd, nullptr);
    ::close(clients[i].fd);
    start_connection(i);
  };

  for (std::size_t i = 0; i < clients.size(); ++i) start_connection(i);
  run.emplace(o.seconds);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    if (!clients[i].connecting) send_request(clients[i]);
  }
  epoll_event events[512];
  char buf[65536];
  while (run->running()) {
    const int n = ::epoll_wait(ep, events, 512, 10);
    for (int k = 0; k < n; ++k) {
      const std::size_t i = events[k].data.u64;
      Client& c = clients[i];
      if (c.connecting) {
        if (!(events[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) continue;
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        c.connecting = false;
        if (err != 0) {
          run->failed();
          restart(i);
          continue;
        }
        send_request(c);
        continue;
      }
      if (!(events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
      for (;;) {
        const ssize_t got = ::read(c.fd, buf, sizeof buf);
        if (got < 0 && errno == EAGAIN) break;
        if (got <= 0) {  // closed or failed: count it and reconnect
          run->failed();
          restart(i);
          break;
        }
        bool done = false;
        if (o.workload == Workload::kHttp) {
          c.in.append(buf, static_cast<std::size_t>(got));
          if (const std::size_t size = http_response_size(c.in)) {
            c.in.erase(0, size);
            done = true;
          }
        } else {
          c.expect -= std::min(c.expect, static_cast<std::size_t>(got));
          done = c.expect == 0;
        }
        if (!done) continue;
        run->completed(c.sent_at);
        if (o.workload == Workload::kChurn) {
          restart(i);
        } else {
          send_request(c);
        }
        break;
      }
    }
  }
  const LoadResult r = run->finish();
  for (Client& c : clients) ::close(c.fd);
  ::close(ep);
  return r;
}

}  // namespace fiberloop::bench
