// Helpers of the LoopGroup and stream tests: a group whose threads are not
// pinned (the tests run on machines with fewer CPUs than loops), a connected
// TCP pair on loopback, and readers that report how they ended.
#pragma once

#include <cstddef>
#include <system_error>
#include <utility>

#include "fiberloop.h"

namespace fiberloop::testing {

inline GroupOptions unpinned(std::size_t loops) {
  GroupOptions options;
  options.loops = loops;
  options.pin_threads = false;
  return options;
}

// {the accepted end, the connecting end}, on the calling fiber's loop.
inline std::pair<TcpStream, TcpStream> connected_pair() {
  TcpListener listener = TcpListener::bind(SocketAddress::from_ip("127.0.0.1", 0));
  TcpStream client = TcpStream::connect(listener.local_address());
  return {listener.accept(), std::move(client)};
}

// A read that reports its errno (0: it read something).
inline int read_errno(Stream& stream) {
  char buf[8];
  try {
    (void)stream.read(buf);
    return 0;
  } catch (const std::system_error& e) {
    return e.code().value();
  }
}

// Reads `stream` in its destructor, ignoring how the read ends: during
// unwinding no interrupt reaches the read, so a loop's shutdown abandons a
// fiber parked in it.
struct ReadsWhenDestroyed {
  Stream* stream;
  ~ReadsWhenDestroyed() { (void)read_errno(*stream); }
};

}  // namespace fiberloop::testing
