// The TLS baseline: a plain OpenSSL + edge-triggered epoll server, no fibers,
// one thread, echoing what it reads. What one core can do for TLS; fiberloop's
// TLS echo server (tls_echo_server.cc) is measured against it in the same
// pass. Its context is set up as TlsContext::server sets up ours (TLS 1.2 or
// later, an unexpected EOF taken as the end), so the two differ only in what
// sits between the socket and OpenSSL.
//   tls_epoll_server --port 7443 --cert cert.pem --key key.pem
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  std::string unsent;  // plaintext an SSL_write could not take yet (retried as is)
};

volatile sig_atomic_t stopping = 0;

// Reads and echoes until OpenSSL wants the socket; false if it is over.
// SSL_read runs the handshake first (the SSL is in accept state).
bool serve(Conn& c) {
  char buf[16384];
  for (;;) {
    if (!c.unsent.empty()) {
      const int n = SSL_write(c.ssl, c.unsent.data(), static_cast<int>(c.unsent.size()));
      if (n <= 0) {
        const int err = SSL_get_error(c.ssl, n);
        return err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ;
      }
      c.unsent.erase(0, static_cast<std::size_t>(n));
      continue;
    }
    const int got = SSL_read(c.ssl, buf, sizeof buf);
    if (got <= 0) {
      const int err = SSL_get_error(c.ssl, got);
      return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
    }
    const int n = SSL_write(c.ssl, buf, got);
    if (n == got) continue;
    if (n > 0) {
      c.unsent.assign(buf + n, static_cast<std::size_t>(got - n));
      continue;
    }
    const int err = SSL_get_error(c.ssl, n);
    if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) return false;
    c.unsent.assign(buf, static_cast<std::size_t>(got));  // retried with the same bytes
  }
}

void drop(Conn* c) {
  SSL_free(c->ssl);
  ::close(c->fd);
  ERR_clear_error();  // a failed connection's errors are not the next one's
  delete c;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 7443;
  const char* cert = nullptr;
  const char* key = nullptr;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--port")) port = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--cert")) cert = argv[i + 1];
    if (!std::strcmp(argv[i], "--key")) key = argv[i + 1];
  }
  if (cert == nullptr || key == nullptr) {
    std::fprintf(stderr, "usage: tls_epoll_server --cert cert.pem --key key.pem [--port 7443]\n");
    return 2;
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    std::fprintf(stderr, "tls_epoll_server: cannot load %s and %s\n", cert, key);
    return 1;
  }
  ::signal(SIGTERM, [](int) { stopping = 1; });
  ::signal(SIGINT, [](int) { stopping = 1; });
  ::signal(SIGPIPE, SIG_IGN);  // OpenSSL's socket BIO writes with write(2)
  const int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(lfd, 4096) != 0) {
    std::perror("tls_epoll_server: bind/listen");
    return 1;
  }
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.ptr = nullptr;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::printf("tls_epoll_server: listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  epoll_event events[256];
  while (!stopping) {
    const int n = ::epoll_wait(ep, events, 256, 100);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {  // the listener
        for (;;) {
          const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          auto* c = new Conn{fd, SSL_new(ctx), {}};
          SSL_set_fd(c->ssl, fd);
          SSL_set_accept_state(c->ssl);
          epoll_event cev{};
          cev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
          cev.data.ptr = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
        }
        continue;
      }
      auto* c = static_cast<Conn*>(events[i].data.ptr);
      if (!serve(*c)) drop(c);  // closing the fd takes it out of the epoll set
    }
  }
  SSL_CTX_free(ctx);
  return 0;
}
