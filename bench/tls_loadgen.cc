// The TLS side of the load generator: N TLS 1.3 clients over loopback, one
// thread, edge-triggered epoll, non-blocking OpenSSL. Clients verify nothing
// (the server's CPU is what is measured, and the client's checks would only
// slow the load) and keep no sessions: every handshake is a full one.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "bench/load_run.h"
#include "bench/loadgen.h"

namespace fiberloop::bench {
namespace {

using Clock = LoadRun::Clock;

struct Client {
  enum class Phase { kHandshake, kWrite, kRead };
  int fd = -1;
  SSL* ssl = nullptr;
  Phase phase = Phase::kHandshake;
  std::size_t expect = 0;  // bytes of the echo still due
  Clock::time_point sent_at;
};

enum class Step { kWait, kDone, kFailed };

// What OpenSSL's answer `r` means for a non-blocking client.
Step want(const Client& c, int r) {
  const int err = SSL_get_error(c.ssl, r);
  return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE ? Step::kWait : Step::kFailed;
}

}  // namespace

LoadResult run_tls_load(const LoadOptions& o) {
  const bool handshakes = o.workload == Workload::kTlsHandshake;
  // An echo sends 1 KiB; a handshake run sends one byte once the handshake
  // is done, so the server has finished its side before the client closes.
  const std::string request(handshakes ? 1 : 1024, 'x');
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  std::vector<Client> clients(static_cast<std::size_t>(o.connections));
  std::optional<LoadRun> run;  // timed from once every connection is under way

  auto start_connection = [&](std::size_t i) {
    Client& c = clients[i];
    bool in_progress;  // the handshake waits for the connect as it needs
    c.fd = connect_loopback(o.port, &in_progress);
    c.ssl = SSL_new(ctx);
    SSL_set_fd(c.ssl, c.fd);
    SSL_set_connect_state(c.ssl);
    c.phase = Client::Phase::kHandshake;
    c.sent_at = Clock::now();  // a handshake run times the whole connection
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  };
  auto end_connection = [&](Client& c) {
    SSL_free(c.ssl);
    ::close(c.fd);  // leaves the epoll set with it
    ERR_clear_error();
  };
  // Runs one client until OpenSSL waits for the socket.
  char buf[16384];
  auto drive = [&](Client& c) {
    for (;;) {
      switch (c.phase) {
        case Client::Phase::kHandshake: {
          const int h = SSL_do_handshake(c.ssl);
          if (h != 1) return want(c, h);
          if (!handshakes) c.sent_at = Clock::now();
          c.phase = Client::Phase::kWrite;
          break;
        }
        case Client::Phase::kWrite: {
          const int n = SSL_write(c.ssl, request.data(), static_cast<int>(request.size()));
          if (n <= 0) return want(c, n);
          c.expect = request.size();
          c.phase = Client::Phase::kRead;
          break;
        }
        case Client::Phase::kRead: {
          const int n = SSL_read(c.ssl, buf, sizeof buf);
          if (n <= 0) return want(c, n);
          c.expect -= std::min(c.expect, static_cast<std::size_t>(n));
          if (c.expect != 0) break;
          run->completed(c.sent_at);
          if (handshakes) return Step::kDone;
          c.sent_at = Clock::now();
          c.phase = Client::Phase::kWrite;
          break;
        }
      }
    }
  };

  for (std::size_t i = 0; i < clients.size(); ++i) start_connection(i);
  run.emplace(o.seconds);
  epoll_event events[512];
  while (run->running()) {
    const int n = ::epoll_wait(ep, events, 512, 10);
    for (int k = 0; k < n; ++k) {
      const std::size_t i = events[k].data.u64;
      const Step step = drive(clients[i]);
      if (step == Step::kWait) continue;
      if (step == Step::kFailed) run->failed();
      end_connection(clients[i]);
      start_connection(i);
    }
  }
  const LoadResult r = run->finish();
  for (Client& c : clients) end_connection(c);
  ::close(ep);
  SSL_CTX_free(ctx);
  return r;
}

}  // namespace fiberloop::bench
