// Streams whose operations run on another loop than the thread that destroys
// them, or sets their deadlines: the destroyer waits for the operation to let
// go of the stream (the destructor's close woke it), and a deadline reaches
// the operation on whichever loop it runs by then.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "fiberloop.h"
#include "tests/group_helpers.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::connected_pair;
using testing::unpinned;

// Destroyed on loop 0 while a fiber of loop 1 is parked in its read: the
// reader wakes with EBADF and lets go of the stream before its memory is
// freed (ASan: before, the reader's deadline bookkeeping wrote into the
// freed stream, or the destroyer wrote into the reader's stack).
TEST(StreamLifetime, AStreamDestroyedWhileAnotherLoopReadsItWaitsForTheReader) {
  LoopGroup group(unpinned(2));
  group.run([&] {
    for (int round = 0; round < 50; ++round) {
      auto [server, client] = connected_pair();
      auto stream = std::make_unique<TcpStream>(std::move(server));
      std::atomic<bool> reading{false};
      auto reader = group.spawn_on(1, [&]() -> int {
        char buf[8];
        try {
          reading = true;
          (void)stream->read(buf);  // moves it to loop 1, and parks
          return 0;
        } catch (const std::system_error& e) {
          return e.code().value();
        }
      });
      while (!reading) this_fiber::yield();
      this_fiber::sleep_for(1ms);  // parked in its read (or about to be)
      stream.reset();
      EXPECT_EQ(with_timeout(5s, [&] { return reader.join(); }), EBADF) << "round " << round;
    }
  });
}

// A reader that moves between loops (one read on loop 1, the next on loop
// 2) while another thread keeps setting its read deadline: each deadline is
// applied on the loop running the read (TSan: never from another thread),
// and a deadline in the past ends the read in progress.
TEST(StreamLifetime, ADeadlineReachesAReaderThatMovesBetweenLoops) {
  LoopGroup group(unpinned(3));
  group.run([&] {
    auto [server, client] = connected_pair();
    std::atomic<bool> stop_setting{false};
    std::thread setter([&] {
      while (!stop_setting) {
        server.set_read_deadline(Clock::now() + 10s);
        std::this_thread::yield();
      }
    });
    for (int round = 0; round < 40; ++round) {
      const std::size_t on = 1 + round % 2;
      auto reader = group.spawn_on(on, [&] {
        char buf[8];
        return std::string(buf, server.read(buf));
      });
      this_fiber::sleep_for(1ms);
      client.write_all("x");
      EXPECT_EQ(with_timeout(5s, [&] { return reader.join(); }), "x") << "round " << round;
    }
    stop_setting = true;
    setter.join();
    auto reader = group.spawn_on(2, [&]() -> std::string {
      char buf[8];
      try {
        return std::string(buf, server.read(buf));
      } catch (const TimeoutError&) {
        return "timed out";
      }
    });
    this_fiber::sleep_for(5ms);  // parked in its read on loop 2
    server.set_read_deadline(Clock::now());
    EXPECT_EQ(with_timeout(5s, [&] { return reader.join(); }), "timed out");
  });
}

}  // namespace
}  // namespace fiberloop
