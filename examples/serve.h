// The examples' server skeleton: accept connections and run a handler in a
// fiber per connection until SIGINT or SIGTERM, then shut down cleanly.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <utility>

#include "fiberloop.h"

namespace fiberloop::examples {

// Listens on `address` and calls handle(TcpStream&) in a new fiber for each
// connection. A signal closes the listener; returning from run() then cancels
// and unwinds every connection still open. Returns the process exit code.
template <class Handler>
int serve(const char* name, const SocketAddress& address, Handler handle) {
  return fiberloop::run([&] {
    TcpListener listener = TcpListener::bind(address);
    std::printf("%s: listening on %s\n", name, listener.local_address().to_string().c_str());
    std::fflush(stdout);
    spawn([&] {
      const int sig = wait_signal({SIGINT, SIGTERM});
      std::fprintf(stderr, "%s: %s, shutting down\n", name, strsignal(sig));
      listener.close();  // wakes the accept below
    }).detach();
    for (;;) {
      TcpStream conn;
      try {
        conn = listener.accept();
      } catch (const std::system_error& e) {
        if (listener.fd() < 0) break;  // closed by the signal
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
    return 0;
  });
}

}  // namespace fiberloop::examples
