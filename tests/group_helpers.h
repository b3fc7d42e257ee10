// Helpers of the LoopGroup and stream tests: a group whose threads are not
// pinned (the tests run on machines with fewer CPUs than loops), a connected
// TCP pair on loopback, and readers that report how they ended.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "fiberloop.h"

namespace fiberloop::testing {

inline GroupOptions unpinned(std::size_t loops) {
  GroupOptions options;
  options.loops = loops;
  options.pin_threads = false;
  return options;
}

// Returns once loop `index` of `group` has a fiber parked on an fd (a read
// that found nothing and waits), checking every 100 us from a fiber of the
// group; throws std::runtime_error after 10 s. "The reader on the other
// loop is parked" without a sleep: a loaded machine outlasts any sleep, and
// the reader then starts after what the test meant to do during its read.
inline void await_fd_waiter(LoopGroup& group, std::size_t index) {
  const TimePoint give_up = Clock::now() + std::chrono::seconds(10);
  while (group.stats_per_loop().at(index).fd_waiters == 0) {
    if (Clock::now() > give_up) {
      throw std::runtime_error("loop " + std::to_string(index) +
                               " has no fiber parked on an fd after 10 s");
    }
    this_fiber::sleep_for(std::chrono::microseconds(100));
  }
}

// Blocks the calling thread (a loop's thread too: its loop serves nothing
// meanwhile) until loop `index` of `group` has a fiber parked on what its
// Loop::dump() line names `waiting` ("parked" for a call to another loop,
// such as a stream's hand-over), asking that loop for its dump every
// 100 us; throws std::runtime_error after 10 s. Not for a wait that needs
// the caller's loop on its way: a fiber of loop 1 waiting on an Event made
// by loop 0 first asks loop 0 to share it, so it stays "parked" until the
// 10 s run out (and a fiber still waiting then outlives the frames the
// exception unwinds).
inline void block_until_parked(LoopGroup& group, std::size_t index, const std::string& waiting) {
  if (Loop::current() == &group.loop(index)) {
    throw std::logic_error("block_until_parked: loop " + std::to_string(index) +
                           " is the caller's own, which cannot answer while it blocks");
  }
  // One line of the dump: "fiber N parked <time>: <waiting> ...".
  const auto names = [&waiting](const std::string& dump) {
    std::istringstream lines(dump);
    for (std::string line; std::getline(lines, line);) {
      const auto parked = line.find(" parked ");
      if (parked != std::string::npos && line.find(": " + waiting, parked) != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  struct Answer {
    std::atomic<bool> in{false};
    std::string dump;
  };
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto answer = std::make_shared<Answer>();  // (outlives a wait given up)
    group.loop(index).call_soon_threadsafe([answer] {
      std::ostringstream out;
      Loop::current()->dump(out);
      answer->dump = out.str();
      answer->in.store(true, std::memory_order_release);
    });
    while (!answer->in.load(std::memory_order_acquire)) {
      if (std::chrono::steady_clock::now() > give_up) {
        throw std::runtime_error("loop " + std::to_string(index) + " did not answer in 10 s");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    if (names(answer->dump)) return;
    if (std::chrono::steady_clock::now() > give_up) {
      throw std::runtime_error("loop " + std::to_string(index) + " has no fiber " + waiting +
                               " after 10 s:\n" + answer->dump);
    }
  }
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
