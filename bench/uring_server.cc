// The ceiling for an io_uring server: a plain one-thread io_uring server, no
// fibers, as simple as epoll_server.cc and doing the same work. Connections
// come from one multishot accept; each connection has one operation in the
// kernel at a time, a RECV into its buffer or a SEND of its replies, and
// every operation of a loop iteration goes to the kernel with the wait, in
// one io_uring_enter(2). Task work runs cooperatively, as in fiberloop's
// io_uring backend (loop/uring_poller.cc). What io_uring can do for this
// work on this kernel, measured in the same pass as epoll_server and
// fiberloop's servers (bench/RESULTS.md).
// `--accept single` arms one ACCEPT per connection instead, to measure what
// multishot accept is worth.
//   uring_server --port 7000 --mode echo|http [--accept multishot|single]
#include <liburing.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::string_view kHttpResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nHello, world!\n";
constexpr std::size_t kBuffer = 16384;
constexpr std::uint64_t kAccept = 0;  // user_data: the multishot accept; else fd << 1 | op
constexpr std::uint64_t kRecv = 0;
constexpr std::uint64_t kSend = 1;

volatile sig_atomic_t stopping = 0;
bool multishot_accept = true;  // --accept single: one ACCEPT per connection

// A connection, in a table by fd; its buffers are reused by the next
// connection on the same fd.
struct Conn {
  char in[kBuffer];
  std::string replies;   // http: the replies being sent
  std::string_view out;  // what is being sent: `in` (echo) or `replies`
  std::size_t sent = 0;
  std::string partial;  // http: the tail of an incomplete request
};
std::vector<std::unique_ptr<Conn>> conns;
io_uring ring;

io_uring_sqe* sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring);
  while (s == nullptr) {
    io_uring_submit(&ring);
    s = io_uring_get_sqe(&ring);
  }
  return s;
}

void recv(int fd) {
  io_uring_sqe* s = sqe();
  io_uring_prep_recv(s, fd, conns[fd]->in, kBuffer, 0);
  io_uring_sqe_set_data64(s, static_cast<std::uint64_t>(fd) << 1 | kRecv);
}

void send_rest(int fd) {
  Conn& c = *conns[fd];
  io_uring_sqe* s = sqe();
  io_uring_prep_send(s, fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(s, static_cast<std::uint64_t>(fd) << 1 | kSend);
}

void arm_accept(int lfd) {
  io_uring_sqe* s = sqe();
  if (multishot_accept) {
    io_uring_prep_multishot_accept(s, lfd, nullptr, nullptr, SOCK_CLOEXEC);
  } else {
    io_uring_prep_accept(s, lfd, nullptr, nullptr, SOCK_CLOEXEC);
  }
  io_uring_sqe_set_data64(s, kAccept);
}

// The replies to what arrived: the same bytes, sent from the receive
// buffer (echo), or one response per complete request (http; the tail of an
// incomplete one is kept).
void answer(Conn& c, std::string_view got, bool http) {
  c.sent = 0;
  if (!http) {
    c.out = got;
    return;
  }
  c.replies.clear();
  c.partial.append(got);
  std::size_t pos = 0, end;
  while ((end = c.partial.find("\r\n\r\n", pos)) != std::string::npos) {
    c.replies.append(kHttpResponse);
    pos = end + 4;
  }
  c.partial.erase(0, pos);
  c.out = c.replies;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 7000;
  bool http = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--port")) port = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--mode")) http = !std::strcmp(argv[i + 1], "http");
    if (!std::strcmp(argv[i], "--accept")) multishot_accept = std::strcmp(argv[i + 1], "single");
  }
  ::signal(SIGTERM, [](int) { stopping = 1; });
  ::signal(SIGINT, [](int) { stopping = 1; });
  const int err = io_uring_queue_init(
      1024, &ring, IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL);
  if (err < 0) {
    std::fprintf(stderr, "uring_server: io_uring_queue_init: %s\n", std::strerror(-err));
    return 1;
  }
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(lfd, 4096) != 0) {
    std::perror("uring_server: bind/listen");
    return 1;
  }
  arm_accept(lfd);
  std::printf("uring_server: listening on 127.0.0.1:%d (%s)\n", port, http ? "http" : "echo");
  std::fflush(stdout);
  __kernel_timespec tick{0, 100'000'000};  // looks at `stopping` every 100 ms
  while (!stopping) {
    io_uring_cqe* cqe;
    io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &tick, nullptr);
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      const std::uint64_t token = cqe->user_data;
      const int res = cqe->res;
      if (token == kAccept) {
        if (res >= 0) {
          if (static_cast<std::size_t>(res) >= conns.size()) conns.resize(res + 1024);
          if (!conns[res]) conns[res] = std::make_unique<Conn>();
          conns[res]->partial.clear();
          recv(res);
        }
        if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept(lfd);
        continue;
      }
      const int fd = static_cast<int>(token >> 1);
      Conn& c = *conns[fd];
      if (res <= 0) {  // end of stream, or an error: one operation at a time, so none is left
        ::close(fd);
      } else if ((token & 1) == kRecv) {
        answer(c, {c.in, static_cast<std::size_t>(res)}, http);
        if (c.out.empty()) {
          recv(fd);
        } else {
          send_rest(fd);
        }
      } else {
        c.sent += static_cast<std::size_t>(res);
        if (c.sent < c.out.size()) {
          send_rest(fd);
        } else {
          recv(fd);
        }
      }
    }
    io_uring_cq_advance(&ring, seen);
  }
  io_uring_queue_exit(&ring);
  return 0;
}
