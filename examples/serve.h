// The examples' server skeleton: accept connections and run a handler in a
// fiber per connection, on one loop or on every core, until SIGINT or
// SIGTERM, then shut down cleanly.
#pragma once

#include <pthread.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "examples/flags.h"
#include "fiberloop.h"

namespace fiberloop::examples {

#ifndef FIBERLOOP_NO_TLS
// The TLS examples' server context, from --cert and --key (PEM paths).
// Without both, prints `usage` and exits 2; if OpenSSL refuses them, says
// why and exits 1.
inline TlsContext tls_server_context(const char* name, int argc, char** argv, const char* usage) {
  const std::string cert = flag(argc, argv, "--cert", "");
  const std::string key = flag(argc, argv, "--key", "");
  if (cert.empty() || key.empty()) {
    std::fprintf(stderr, "usage: %s %s\n", name, usage);
    std::exit(2);
  }
  try {
    return TlsContext::server(cert, key);
  } catch (const TlsError& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    std::exit(1);
  }
}
#endif

// Accepts connections on `listener` until it is closed, and calls
// handle(TcpStream&) in a new fiber (on this loop) for each.
template <class Handler>
void accept_loop(const char* name, TcpListener& listener, Handler& handle) {
  for (;;) {
    TcpStream conn;
    try {
      conn = listener.accept();
    } catch (const std::system_error& e) {
      if (listener.fd() < 0) return;  // closed: shutting down
      // Out of fds and the like: say so, back off, go on (never spin).
      std::fprintf(stderr, "%s: %s\n", name, e.what());
      this_fiber::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    spawn([&handle, conn = std::move(conn)]() mutable {
      try {
        handle(conn);
      } catch (const std::system_error&) {
        // The peer reset or vanished: this connection is over, the server is not.
      }
    }).detach();
  }
}

// Listens on `address` and calls handle(TcpStream&) in a new fiber for each
// connection, on `loops` loops (0: one per CPU of the affinity mask). With
// more than one, every loop binds the address with SO_REUSEPORT and the
// kernel spreads the connections; a connection stays on the loop that
// accepted it. SIGINT or SIGTERM closes the listeners; returning then
// cancels and unwinds every connection still open. Returns the exit code.
template <class Handler>
int serve(const char* name, const SocketAddress& address, Handler handle, std::size_t loops) {
  const auto say_listening = [name](const TcpListener& l, std::size_t n) {
    std::printf("%s: listening on %s (%zu %s)\n", name, l.local_address().to_string().c_str(), n,
                n == 1 ? "loop" : "loops");
    std::fflush(stdout);
  };
  // This thread waits in run() while loop 0 waits for the signals: it must
  // not take them itself (the group's own threads block every signal).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  GroupOptions options;
  options.loops = loops;
  LoopGroup group(options);
  if (group.size() == 1) {
    return group.run([&] {
      TcpListener listener = TcpListener::bind(address);
      say_listening(listener, 1);
      spawn([&] {
        const int sig = wait_signal({SIGINT, SIGTERM});
        std::fprintf(stderr, "%s: %s, shutting down\n", name, strsignal(sig));
        listener.close();  // wakes the accept
      }).detach();
      accept_loop(name, listener, handle);
      return 0;
    });
  }
  return group.run([&] {
    // Loop 0 binds first: a port of 0 becomes the one the others bind too.
    TcpListener::Options reuse;
    reuse.reuse_port = true;
    std::vector<TcpListener> listeners(group.size());
    listeners[0] = TcpListener::bind(address, reuse);
    const SocketAddress bound = listeners[0].local_address();
    for (std::size_t i = 1; i < group.size(); ++i) {
      group
          .spawn_on(i,
                    [&listeners, &bound, &reuse, i] {
                      listeners[i] = TcpListener::bind(bound, reuse);  // on its own loop
                    })
          .join();
    }
    say_listening(listeners[0], group.size());
    std::vector<Task<void>> acceptors;
    for (std::size_t i = 1; i < group.size(); ++i) {
      acceptors.push_back(group.spawn_on(i, [&, i] { accept_loop(name, listeners[i], handle); }));
    }
    spawn([&] {
      const int sig = wait_signal({SIGINT, SIGTERM});
      std::fprintf(stderr, "%s: %s, shutting down\n", name, strsignal(sig));
      for (std::size_t i = 0; i < group.size(); ++i) {  // each on its own loop
        group.spawn_on(i, [&listeners, i] { listeners[i].close(); }).join();
      }
    }).detach();
    accept_loop(name, listeners[0], handle);
    for (auto& a : acceptors) a.join();
    return 0;
  });
}

}  // namespace fiberloop::examples
