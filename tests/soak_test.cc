// The soak test: an echo server on one loop, and on another thread a crowd
// of clients that, besides honest request/response traffic, disconnect in
// the middle of a message, send half a message and shut down, reset the
// connection, or stall until the server times them out. At the end:
// every honest request was answered, every connection the server took
// ended in EOF, a timeout or a reported error, the fd count is back where it
// started, no fiber or stack is left, and (unsanitized builds) RSS stayed
// flat after the warm-up.
//   bazel-bin/tests/soak_test --seconds=300     (CI runs 10 s)
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "fiberloop.h"

namespace {

using namespace fiberloop;
using namespace std::chrono_literals;

constexpr bool kSanitized =
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    true;
#else
    false;
#endif

constexpr int kClients = 64;  // client fibers at once
// A stalled client is dropped after this: long enough that only stalled
// clients hit it, never an honest one whose loop a loaded machine (or a
// sanitizer's slowdown) held back.
constexpr Duration kServerIdleTimeout = 2s;
constexpr Duration kStallFor = 2 * kServerIdleTimeout;

enum Behaviour { kHonest, kDisconnect, kHalfMessage, kReset, kStall, kBehaviours };
const char* const kBehaviourNames[] = {"honest", "disconnect mid-message", "half message", "reset",
                                       "stall"};

struct ClientCounts {
  std::uint64_t connections[kBehaviours] = {};
  std::uint64_t requests = 0;  // honest requests sent
  std::uint64_t answered = 0;  // ... and answered with the same bytes
  std::uint64_t lost = 0;      // ... and not (must stay 0)
  std::uint64_t half_echoed = 0;
  std::uint64_t stall_dropped = 0;
  std::uint64_t fault_errors = 0;  // a misbehaving client saw an error (the server hung up first)
};

struct ServerCounts {
  std::uint64_t accepted = 0;
  std::uint64_t ended_eof = 0;
  std::uint64_t ended_timeout = 0;
  std::uint64_t ended_error = 0;  // a std::system_error the handler caught and counted
  std::uint64_t bytes = 0;
};

int open_fds() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

std::size_t rss_kib() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) / 1024);
}

// ---- the server -------------------------------------------------------------

void handle(TcpStream conn, ServerCounts& counts) {
  char buf[8192];
  try {
    for (;;) {
      const std::size_t n = with_timeout(kServerIdleTimeout, [&] {
        return conn.read({buf, sizeof buf});
      });
      if (n == 0) {
        ++counts.ended_eof;
        return;
      }
      counts.bytes += n;
      conn.write_all({buf, n});
    }
  } catch (const TimeoutError&) {
    ++counts.ended_timeout;
  } catch (const std::system_error&) {
    ++counts.ended_error;  // ECONNRESET, EPIPE: the client went away
  }
}

// ---- the clients ------------------------------------------------------------

std::string random_message(std::mt19937& rng) {
  std::string m(1 + rng() % 4096, '\0');
  for (char& c : m) c = static_cast<char>('a' + rng() % 26);
  return m;
}

void reset_on_close(TcpStream& conn) {
  const linger l{1, 0};
  if (::setsockopt(conn.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0)
    throw std::system_error(errno, std::generic_category(), "setsockopt(SO_LINGER)");
}

void misbehave(TcpStream& conn, Behaviour behaviour, std::mt19937& rng, ClientCounts& counts);

void client(const SocketAddress& server, std::uint32_t seed, TimePoint until,
            ClientCounts& counts) {
  std::mt19937 rng(seed);
  while (Clock::now() < until) {
    const auto behaviour = static_cast<Behaviour>(rng() % 10 < 6 ? 0u : 1 + rng() % 4);
    ++counts.connections[behaviour];
    TcpStream conn = TcpStream::connect(server);
    switch (behaviour) {
      case kHonest: {
        const int requests = 1 + static_cast<int>(rng() % 20);
        for (int i = 0; i < requests; ++i) {
          const std::string m = random_message(rng);
          ++counts.requests;
          try {
            conn.write_all(m);
            std::string back(m.size(), '\0');
            conn.read_exact(back);
            if (back == m) {
              ++counts.answered;
            } else {
              ++counts.lost;
              std::fprintf(stderr, "soak: an echo differs from its request\n");
            }
          } catch (const std::exception& e) {
            ++counts.lost;
            std::fprintf(stderr, "soak: an honest request failed: %s\n", e.what());
            break;
          }
        }
        break;
      }
      default:
        try {
          misbehave(conn, behaviour, rng, counts);
        } catch (const std::system_error&) {
          ++counts.fault_errors;
        }
        break;
    }
  }
}

// The faults a client injects.
void misbehave(TcpStream& conn, Behaviour behaviour, std::mt19937& rng, ClientCounts& counts) {
  switch (behaviour) {
    case kDisconnect: {
      const std::string m = random_message(rng);
      conn.write_all(std::string_view(m).substr(0, m.size() / 2 + 1));
      break;  // closed without reading the echo
    }
    case kHalfMessage: {
      const std::string m = random_message(rng);
      const std::string_view half = std::string_view(m).substr(0, m.size() / 2 + 1);
      conn.write_all(half);
      conn.shutdown_write();
      std::string back;
      char buf[4096];
      while (std::size_t n = conn.read(buf)) back.append(buf, n);
      if (back == half) ++counts.half_echoed;
      break;
    }
    case kReset: {
      conn.write_all(random_message(rng));
      reset_on_close(conn);
      break;
    }
    case kStall: {
      conn.write_all("partial");
      this_fiber::sleep_for(kStallFor);
      char buf[64];
      try {
        std::size_t got = 0, n = 0;
        while ((n = conn.read(buf)) != 0) got += n;  // the echo of "partial", then EOF
        if (got == 7) ++counts.stall_dropped;
      } catch (const std::system_error&) {
        ++counts.stall_dropped;  // or a reset, if the echo was still unread
      }
      break;
    }
    case kHonest:
    case kBehaviours:
      break;
  }
}

ClientCounts run_clients(const SocketAddress& server, Duration duration) {
  ClientCounts counts;
  fiberloop::run([&] {
    const TimePoint until = Clock::now() + duration;
    std::vector<Task<void>> clients;
    for (int i = 0; i < kClients; ++i) {
      clients.push_back(spawn([&, i] { client(server, 1000 + i, until, counts); }));
    }
    for (auto& c : clients) c.join();
  });
  return counts;
}

double flag_seconds(int argc, char** argv, double fallback) {
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--seconds=", 10) == 0) return std::atof(argv[i] + 10);
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = flag_seconds(argc, argv, 10);
  const auto duration =
      std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
  const int fds_before = open_fds();

  ServerCounts server;
  ClientCounts clients;
  std::size_t rss_warm = 0, rss_end = 0;
  LoopStats after{};
  {
    Loop loop;
    loop.spawn([&] {
          TcpListener listener = TcpListener::bind(SocketAddress::parse("127.0.0.1:0"));
          WaitGroup handlers;
          Task<void> acceptor = spawn(SpawnOptions{.name = "acceptor", .stack = {}}, [&] {
            for (;;) {
              TcpStream conn = listener.accept();
              ++server.accepted;
              handlers.add();
              spawn(SpawnOptions{.name = "echo", .stack = {}}, [&,
                                                                conn = std::move(conn)]() mutable {
                handle(std::move(conn), server);
                handlers.done();
              }).detach();
            }
          });
          // The clients run on a worker thread with a loop of their own; this
          // fiber samples RSS once the warm-up (a fifth of the run) is over.
          Task<void> sampler = spawn([&] {
            this_fiber::sleep_for(duration / 5);
            rss_warm = rss_kib();
          });
          clients = run_blocking([&] { return run_clients(listener.local_address(), duration); });
          sampler.join();
          // A client may have connected and gone before its connection was
          // accepted: let the acceptor take the backlog first.
          std::uint64_t total = 0;
          for (auto n : clients.connections) total += n;
          for (int i = 0; server.accepted < total && i < 500; ++i) this_fiber::sleep_for(10ms);
          acceptor.cancel();
          try {
            acceptor.join();
          } catch (const Cancelled&) {
          }
          handlers.wait();  // stalled connections time out on the server's side
          rss_end = rss_kib();
        })
        .detach();
    loop.run();
    after = loop.stats();
  }
  const int fds_after = open_fds();

  std::uint64_t connections = 0, faults = 0;
  for (int b = 0; b < kBehaviours; ++b) {
    connections += clients.connections[b];
    if (b != kHonest) faults += clients.connections[b];
  }
  std::printf("soak: %.0f s, %llu connections, %llu honest requests (%llu answered, %llu lost)\n",
              seconds, static_cast<unsigned long long>(connections),
              static_cast<unsigned long long>(clients.requests),
              static_cast<unsigned long long>(clients.answered),
              static_cast<unsigned long long>(clients.lost));
  std::printf("soak: %llu faults injected:", static_cast<unsigned long long>(faults));
  for (int b = 1; b < kBehaviours; ++b)
    std::printf(" %s %llu;", kBehaviourNames[b],
                static_cast<unsigned long long>(clients.connections[b]));
  std::printf(
      "\nsoak: half messages echoed %llu, stalled clients dropped %llu, errors seen by "
      "misbehaving clients %llu\n",
      static_cast<unsigned long long>(clients.half_echoed),
      static_cast<unsigned long long>(clients.stall_dropped),
      static_cast<unsigned long long>(clients.fault_errors));
  std::printf(
      "soak: server accepted %llu, ended by EOF %llu, idle timeout %llu, reported error %llu; "
      "%.1f MiB echoed\n",
      static_cast<unsigned long long>(server.accepted),
      static_cast<unsigned long long>(server.ended_eof),
      static_cast<unsigned long long>(server.ended_timeout),
      static_cast<unsigned long long>(server.ended_error), server.bytes / 1048576.0);
  std::printf("soak: fds %d before, %d after; RSS %zu KiB after warm-up, %zu KiB at the end\n",
              fds_before, fds_after, rss_warm, rss_end);
  std::printf("soak: left behind: %llu fibers, %llu stacks, %llu registered fds, %llu timers\n",
              static_cast<unsigned long long>(after.fibers_alive),
              static_cast<unsigned long long>(after.stacks_outstanding),
              static_cast<unsigned long long>(after.fds_registered),
              static_cast<unsigned long long>(after.timers_pending));

  std::vector<std::string> failures;
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) failures.push_back(what);
  };
  check(clients.requests > 0 && clients.lost == 0 && clients.answered == clients.requests,
        "every honest request answered");
  check(server.accepted == connections, "the server accepted every connection");
  check(server.ended_eof + server.ended_timeout + server.ended_error == server.accepted,
        "every connection ended in EOF, a timeout or a reported error");
  check(clients.connections[kStall] == 0 || server.ended_timeout > 0,
        "stalled clients timed out on the server");
  check(fds_after == fds_before, "fd count back to the start");
  check(after.fibers_alive == 0 && after.stacks_outstanding == 0 && after.fds_registered == 0 &&
            after.timers_pending == 0,
        "no fiber, stack, fd registration or timer left");
  // RSS: allow the allocator some slack, not growth with the connections served.
  const std::size_t slack = std::max<std::size_t>(16 * 1024, rss_warm / 10);
  check(kSanitized || rss_end <= rss_warm + slack, "RSS flat after warm-up");
  for (const auto& f : failures) std::fprintf(stderr, "soak: FAILED: %s\n", f.c_str());
  return failures.empty() ? 0 : 1;
}
