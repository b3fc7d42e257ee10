// The TLS baseline: a plain OpenSSL + edge-triggered epoll server, no fibers,
// one thread, echoing what it reads. What one core can do for TLS; fiberloop's
// TLS echo server (tls_echo_server.cc) is measured against it in the same
// pass. Its context is set up as TlsContext::server sets up ours (TLS 1.2 or
// later, an unexpected EOF taken as the end), so the two differ only in what
// sits between the socket and OpenSSL.
//   tls_epoll_server --port 7443 --cert cert.pem --key key.pem
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench/plain_server.h"

namespace {

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  std::string unsent;  // plaintext an SSL_write could not take yet (retried as is)
};

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
  const int status = fiberloop::bench::run_plain_server(
      "tls_epoll_server", port, "TLS echo",
      [ctx](int fd) -> void* {
        auto* c = new Conn{fd, SSL_new(ctx), {}};
        SSL_set_fd(c->ssl, fd);
        SSL_set_accept_state(c->ssl);
        return c;
      },
      [](void* token, std::uint32_t) {
        auto* c = static_cast<Conn*>(token);
        if (!serve(*c)) drop(c);  // closing the fd takes it out of the epoll set
      });
  SSL_CTX_free(ctx);
  return status;
}
