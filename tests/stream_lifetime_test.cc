// Streams destroyed, assigned to, or given deadlines on another thread than
// the loop whose fiber is in one of their operations: the stream lets go of
// the operation on that loop (it never touches the stream again, and throws
// EBADF when the close wakes it), without waiting for the operation itself.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "fiberloop.h"
#include "tests/group_helpers.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::await_fd_waiter;
using testing::block_until_parked;
using testing::connected_pair;
using testing::read_errno;
using testing::ReadsWhenDestroyed;
using testing::unpinned;

// Destroyed on loop 0 while a fiber of loop 1 is parked in its read: the
// reader wakes with EBADF, having let go of the stream on its own loop
// (ASan: before, the reader's deadline bookkeeping wrote into the freed
// stream, or the destroyer wrote into the reader's stack).
TEST(StreamLifetime, AStreamDestroyedWhileAnotherLoopReadsItWakesTheReader) {
  LoopGroup group(unpinned(2));
  group.run([&] {
    for (int round = 0; round < 50; ++round) {
      auto [server, client] = connected_pair();
      auto stream = std::make_unique<TcpStream>(std::move(server));
      auto reader = group.spawn_on(1, [&, &s = *stream] {
        return read_errno(s);  // moves it to loop 1, and parks
      });
      await_fd_waiter(group, 1);  // parked in its read
      stream.reset();
      EXPECT_EQ(with_timeout(5s, [&] { return reader.join(); }), EBADF) << "round " << round;
    }
  });
}

// Destroyed on loop 0 while the reader of loop 1 waits for loop 0 to hand
// the fd over (its request queued on loop 0, which has not served its queue
// yet): the request finds the fd closed, and the reader throws EBADF (ASan:
// before, the request read the freed fd state).
TEST(StreamLifetime, AStreamDestroyedWhileItsHandOverIsQueuedWakesTheReader) {
  LoopGroup group(unpinned(2));
  group.run([&] {
    for (int round = 0; round < 20; ++round) {
      auto [server, client] = connected_pair();
      auto stream = std::make_unique<TcpStream>(std::move(server));
      auto reader = group.spawn_on(1, [&, &s = *stream] { return read_errno(s); });
      // Loop 0's thread does not serve its queue until the stream is gone:
      // the reader stays parked in its request for the hand-over.
      block_until_parked(group, 1, "waiting for another loop");
      stream.reset();
      EXPECT_EQ(with_timeout(5s, [&] { return reader.join(); }), EBADF) << "round " << round;
    }
  });
}

// The same from a plain thread, while the reader is parked on loop 1.
TEST(StreamLifetime, AStreamDestroyedOnAPlainThreadWakesAReaderOfALoop) {
  LoopGroup group(unpinned(2));
  group.run([&] {
    for (int round = 0; round < 20; ++round) {
      auto [server, client] = connected_pair();
      auto stream = std::make_unique<TcpStream>(std::move(server));
      auto reader = group.spawn_on(1, [&, &s = *stream] { return read_errno(s); });
      await_fd_waiter(group, 1);  // parked in its read
      run_blocking([&] { stream.reset(); });
      EXPECT_EQ(with_timeout(5s, [&] { return reader.join(); }), EBADF) << "round " << round;
    }
  });
}

// A stream assigned to while a fiber of another loop reads it: the reader
// is let go of (and woken with EBADF, its fd closed), and the stream reads
// again at once. Before, the new read was refused as a second reader until
// the old one unwound.
TEST(StreamLifetime, AStreamAssignedToWhileAnotherLoopReadsItReadsAgain) {
  LoopGroup group(unpinned(2));
  group.run([&] {
    auto [server, client] = connected_pair();
    auto [other_server, other_client] = connected_pair();
    auto reader = group.spawn_on(1, [&] { return read_errno(server); });
    // (Parked in its read of the first stream: started later, it would read
    // the stream assigned below and wait for ever.)
    await_fd_waiter(group, 1);
    server = std::move(other_server);
    other_client.write_all("y");
    char buf[8];
    EXPECT_EQ(std::string(buf, server.read(buf)), "y");
    EXPECT_EQ(with_timeout(5s, [&] { return reader.join(); }), EBADF);
  });
}

// The same on one loop, where the new read comes before the old reader,
// woken by the close, has run: it is not refused as a second reader.
TEST(StreamLifetime, AStreamAssignedToWhileAFiberReadsItReadsAgainAtOnce) {
  fiberloop::run([] {
    auto [server, client] = connected_pair();
    auto [other_server, other_client] = connected_pair();
    other_client.write_all("y");
    auto reader = spawn([&] { return read_errno(server); });
    this_fiber::yield();  // parked in its read
    server = std::move(other_server);
    char buf[8];
    EXPECT_EQ(std::string(buf, server.read(buf)), "y");
    EXPECT_EQ(with_timeout(5s, [&] { return reader.join(); }), EBADF);
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
      await_fd_waiter(group, on);  // parked in its read, on loop `on`
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
    await_fd_waiter(group, 2);  // parked in its read on loop 2
    server.set_read_deadline(Clock::now());
    EXPECT_EQ(with_timeout(5s, [&] { return reader.join(); }), "timed out");
  });
}

// A stream whose reader was abandoned by its loop's shutdown: a read from
// another loop is refused, saying so (the abandoned operation never ends);
// a stream assigned over it reads at once (before, assigning left the
// direction to the abandoned operation, and every later read was refused).
TEST(StreamLifetime, AReaderAbandonedByItsLoopIsNamedAndLetGoOfByAssignment) {
  std::optional<std::pair<TcpStream, TcpStream>> pair;
  ::testing::internal::CaptureStderr();
  std::thread([&] {
    Loop loop;
    loop.spawn([&] {
      pair.emplace(connected_pair());
      loop.stop();  // once this fiber parks below
      ReadsWhenDestroyed reads{&pair->first};
      Event never;
      never.wait();
    });
    loop.run();
  }).join();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("abandoned 1 fiber"), std::string::npos) << err;
  fiberloop::run([&] {
    char buf[8];
    try {
      (void)pair->first.read(buf);
      ADD_FAILURE() << "read a stream whose reader was abandoned";
    } catch (const std::logic_error& e) {
      EXPECT_NE(std::string(e.what()).find("abandoned by its loop's shutdown"), std::string::npos)
          << e.what();
    }
    auto [server, client] = connected_pair();
    pair->first = std::move(server);
    client.write_all("x");
    EXPECT_EQ(std::string(buf, pair->first.read(buf)), "x");
  });
}

// A read_exact parked in a stream that is then moved from and destroyed:
// the move lets go of the operation (its socket went with the move, so the
// destroyed stream's close wakes nothing), which, woken later by the data
// or the end of the stream, makes no further call on the freed stream, and
// builds no message from it (ASan: before, it went on reading through it,
// or asked it to describe itself), and throws EBADF.
TEST(StreamLifetime, AReadExactLetGoOfBetweenItsCallsMakesNoMore) {
  for (const bool peer_closes : {false, true}) {
    fiberloop::run([peer_closes] {
      auto [server, client] = connected_pair();
      auto stream = std::make_unique<TcpStream>(std::move(server));
      auto reader = spawn([&s = *stream]() -> int {
        char buf[4];
        try {
          s.read_exact(buf);
          return 0;
        } catch (const std::system_error& e) {
          return e.code().value();
        }
      });
      this_fiber::yield();  // parked in its first read
      TcpStream moved(std::move(*stream));
      stream.reset();
      if (peer_closes) {
        client.close();  // the first read returns 0: end of stream
      } else {
        client.write_all("ab");  // the first read returns 2 of the 4 bytes
      }
      EXPECT_EQ(with_timeout(5s, [&] { return reader.join(); }), EBADF) << peer_closes;
    });
  }
}

// A run_blocking job still running when its loop shuts down, which then
// closes a stream of that loop: the loop answers while it waits for the job
// (before, it joined its workers without serving its queue, and the two
// waited on each other for good).
TEST(StreamLifetime, AJobClosingAStreamOfItsClosingLoopIsAnswered) {
  std::optional<std::pair<TcpStream, TcpStream>> pair;
  std::atomic<bool> started{false};
  std::atomic<bool> stopped{false};
  std::atomic<bool> closed{false};
  auto ended = std::async(std::launch::async, [&] {
    Loop loop;
    loop.spawn([&] {
      pair.emplace(connected_pair());
      run_blocking([&] {
        started = true;
        while (!stopped) std::this_thread::sleep_for(100us);
        std::this_thread::sleep_for(300ms);  // past the shutdown's grace (100 ms)
        pair->first.close();
        closed = true;
      });
    });
    loop.spawn([&] {
      while (!started) this_fiber::sleep_for(1ms);
      loop.stop();  // (a job not yet started would be dropped)
      stopped = true;
    });
    loop.run();
  });  // the Loop's end cancels the fiber; the job runs on, and is waited for
  ASSERT_EQ(ended.wait_for(20s), std::future_status::ready)
      << "the loop's end and its job wait on each other";
  EXPECT_TRUE(closed);
  EXPECT_FALSE(pair->first.is_open());
}

}  // namespace
}  // namespace fiberloop
