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

// How many lines of a Loop::dump() show a fiber parked on `waiting` (the
// start of what the line says it waits for; "" for anything): lines such as
// "fiber N parked 3 ms: reading fd 9 ...".
inline std::size_t count_parked(const std::string& dump, const std::string& waiting) {
  std::istringstream lines(dump);
  std::size_t count = 0;
  for (std::string line; std::getline(lines, line);) {
    const auto parked = line.find(" parked ");
    if (parked != std::string::npos && line.find(": " + waiting, parked) != std::string::npos) {
      ++count;
    }
  }
  return count;
}

// Asks loop `index` of `group` for its dump every 100 us, pausing with
// `pause(100us)` between asks, until it shows `count` fibers parked on
// `waiting` (count_parked); throws std::runtime_error after 10 s.
template <class Pause>
void poll_parked(LoopGroup& group, std::size_t index, const std::string& waiting, std::size_t count,
                 Pause pause) {
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
      pause(std::chrono::microseconds(100));
    }
    if (count_parked(answer->dump, waiting) >= count) return;
    if (std::chrono::steady_clock::now() > give_up) {
      throw std::runtime_error("loop " + std::to_string(index) + " has fewer than " +
                               std::to_string(count) + " fibers parked on '" + waiting +
                               "' after 10 s:\n" + answer->dump);
    }
    pause(std::chrono::microseconds(100));
  }
}

// Blocks the calling thread (a loop's thread too: its loop serves nothing
// meanwhile) until loop `index` of `group` has `count` fibers parked on
// what their Loop::dump() line names `waiting` ("waiting for another loop"
// for a question to another loop, such as a stream's hand-over; "" for
// anything); throws std::runtime_error after 10 s. Not for a wait that
// needs the caller's loop on its way: a fiber of loop 1 waiting on an Event
// made by loop 0 first asks loop 0 to share it, and waits for that answer
// until the 10 s run out (and a fiber still waiting then outlives the
// frames the exception unwinds). await_parked() is the form whose loop
// keeps serving.
inline void block_until_parked(LoopGroup& group, std::size_t index, const std::string& waiting,
                               std::size_t count = 1) {
  if (Loop::current() == &group.loop(index)) {
    throw std::logic_error("block_until_parked: loop " + std::to_string(index) +
                           " is the caller's own, which cannot answer while it blocks");
  }
  poll_parked(group, index, waiting, count,
              [](std::chrono::microseconds d) { std::this_thread::sleep_for(d); });
}

// As block_until_parked(), from a fiber of the group that sleeps between
// asks, so that its loop goes on serving (the hand-overs and shared
// primitives of the awaited fibers).
inline void await_parked(LoopGroup& group, std::size_t index, const std::string& waiting,
                         std::size_t count = 1) {
  poll_parked(group, index, waiting, count,
              [](std::chrono::microseconds d) { this_fiber::sleep_for(d); });
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
