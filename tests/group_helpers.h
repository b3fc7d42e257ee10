// Helpers of the LoopGroup tests: a group whose threads are not pinned (the
// tests run on machines with fewer CPUs than loops), and a connected TCP
// pair on loopback.
#pragma once

#include <cstddef>
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

}  // namespace fiberloop::testing
