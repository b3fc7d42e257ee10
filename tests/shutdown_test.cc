// Shutdown is bounded: once a Loop is being destroyed (or run(main) ends),
// callbacks and timers scheduled during it are destroyed without running,
// fibers spawned during it are cancelled before they run, cancellation is
// delivered again at every suspension, and fibers that still will not end
// are named in one report and abandoned (their stacks leaked, never freed
// under a live frame). Regression tests for issue 11, class 3.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "fiberloop.h"
#include "loop/run_blocking.h"
#include "tests/group_helpers.h"
#include "tests/shutdown_helpers.h"
#include "tests/temp_dir.h"
#include "tests/thread_probe.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::a_thread_blocks_in;
using testing::blocks_in;
using testing::ReadsWhenDestroyed;
using testing::seconds_since;
using testing::shut_down;
using testing::thread_blocked_in;

// Sets `flag` when destroyed: shows a callback was destroyed, run or not.
struct SetOnDestroy {
  std::atomic<bool>* flag;
  ~SetOnDestroy() { flag->store(true); }
};

// Spawns a fiber that parks until cancelled and then runs `cleanup` in its
// handler, and runs the loop until the fiber is parked.
template <class F>
void park_then(Loop& loop, F cleanup) {
  loop.spawn([cleanup] {
    try {
      Event never;
      never.wait();
    } catch (const Cancelled&) {
      cleanup();
      throw;
    }
  });
  loop.call_soon([&loop] { loop.stop(); });
  loop.run();
}

TEST(Shutdown, ACallbackScheduledByACleanupIsDroppedNotRunNorWaitedFor) {
  std::atomic<bool> ran{false}, destroyed{false};
  auto [took, err] = shut_down([&](Loop& loop) {
    park_then(loop, [&] {
      auto guard = std::make_shared<SetOnDestroy>(&destroyed);
      Loop::current()->call_later(3s, [&ran, guard] { ran = true; });
      Loop::current()->call_soon([&ran, guard] { ran = true; });
    });
  });
  EXPECT_LT(took, 1.5);
  EXPECT_FALSE(ran);
  EXPECT_TRUE(destroyed);
}

TEST(Shutdown, AFiberThatCatchesCancelledAndSleepsAgainEndsAtOnce) {
  bool slept_through = false;
  auto [took, err] = shut_down([&](Loop& loop) {
    park_then(loop, [&] {
      this_fiber::sleep_for(1h);  // cancelled again here
      slept_through = true;
    });
  });
  EXPECT_LT(took, 1.5);
  EXPECT_FALSE(slept_through);
  EXPECT_EQ(err, "");
}

TEST(Shutdown, ACleanupThatReadsASilentSocketEndsAtOnce) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  auto [took, err] = shut_down([&](Loop& loop) {
    park_then(loop, [&] { wait_readable(fds[0]); });  // nobody ever writes
  });
  EXPECT_LT(took, 1.5);
  EXPECT_EQ(err, "");
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(Shutdown, AFiberSpawnedDuringShutdownIsCancelledBeforeItRuns) {
  std::atomic<bool> ran{false};
  std::string outcome;
  auto [took, err] = shut_down([&](Loop& loop) {
    park_then(loop, [&] {
      auto late = spawn([&] { ran = true; });
      try {
        late.join();
        outcome = "joined";
      } catch (const Cancelled&) {
        outcome = "cancelled";
      }
    });
  });
  EXPECT_FALSE(ran);
  EXPECT_EQ(outcome, "cancelled");
}

TEST(Shutdown, AFiberThatNeverStopsCatchingIsAbandonedWithOneReport) {
  std::atomic<int> catches{0};
  auto [took, err] = shut_down([&](Loop& loop) {
    for (const char* name : {"stubborn-1", "stubborn-2"}) {
      loop.spawn(SpawnOptions{.name = name}, [&] {
        for (;;) {
          try {
            this_fiber::sleep_for(1h);
          } catch (const Cancelled&) {
            ++catches;
          }
        }
      });
    }
    loop.call_soon([&loop] { loop.stop(); });
    loop.run();
  });
  EXPECT_LT(took, 1.5);
  EXPECT_GT(catches.load(), 2);
  EXPECT_NE(err.find("abandoned 2 fibers"), std::string::npos) << err;
  EXPECT_NE(err.find("'stubborn-1'"), std::string::npos) << err;
  EXPECT_NE(err.find("'stubborn-2'"), std::string::npos) << err;
}

TEST(Shutdown, AFiberThatYieldsForeverInAHandlerIsAbandoned) {
  auto [took, err] = shut_down([&](Loop& loop) {
    loop.spawn(SpawnOptions{.name = "spinner"}, [] {
      for (;;) {
        try {
          this_fiber::yield();
        } catch (const Cancelled&) {
        }
      }
    });
    loop.call_soon([&loop] { loop.stop(); });
    loop.run();
  });
  EXPECT_LT(took, 1.5);
  EXPECT_NE(err.find("'spinner'"), std::string::npos) << err;
}

TEST(Shutdown, CleanupInADestructorDuringUnwindingStillRuns) {
  // Re-delivery spares code that unwinding runs: a Cancelled thrown out of
  // a destructor would end the process. A wait there that can complete does.
  std::string trace;
  auto [took, err] = shut_down([&](Loop& loop) {
    loop.spawn([&] {
      Mutex m;
      struct Cleanup {
        Mutex& m;
        std::string& trace;
        ~Cleanup() {
          this_fiber::yield();  // not interrupted: this runs during unwinding
          std::lock_guard g(m);
          trace += "cleaned ";
        }
      } cleanup{m, trace};
      Event never;
      never.wait();
    });
    loop.call_soon([&loop] { loop.stop(); });
    loop.run();
  });
  EXPECT_EQ(trace, "cleaned ");
  EXPECT_EQ(err, "");
}

TEST(Shutdown, ADestructorThatWaitsForeverDuringUnwindingIsAbandoned) {
  auto [took, err] = shut_down([&](Loop& loop) {
    loop.spawn(SpawnOptions{.name = "stuck-in-cleanup"}, [] {
      struct WaitsForever {
        ~WaitsForever() {
          Event never;
          never.wait();
        }
      } w;
      this_fiber::sleep_for(1h);
    });
    loop.call_soon([&loop] { loop.stop(); });
    loop.run();
  });
  EXPECT_LT(took, 1.5);
  EXPECT_NE(err.find("'stuck-in-cleanup'"), std::string::npos) << err;
}

TEST(Shutdown, TheLastPromiseInAQueuedThreadsafeCallbackIsDestroyedWithoutReenteringTheLoop) {
  // ~Promise schedules its Future's done-callbacks with call_soon; destroyed
  // by ~Loop as a queued cross-thread callback, it threw logic_error from a
  // destructor and the process aborted.
  std::atomic<bool> callback_ran{false};
  auto [took, err] = shut_down([&](Loop& loop) {
    Promise<int> promise;
    promise.get_future().add_done_callback([&](Future<int>) { callback_ran = true; });
    std::thread([&loop, p = std::move(promise)]() mutable {
      loop.call_soon_threadsafe([p = std::move(p)] {});
    }).join();
  });
  EXPECT_FALSE(callback_ran);
}

TEST(Shutdown, TimersAndCallbacksQueuedBeforeShutdownAreDropped) {
  std::atomic<bool> ran{false}, destroyed{false};
  auto [took, err] = shut_down([&](Loop& loop) {
    auto guard = std::make_shared<SetOnDestroy>(&destroyed);
    loop.call_later(1h, [&ran, guard] { ran = true; });
    loop.call_soon([&ran, guard] { ran = true; });
    loop.call_soon_threadsafe([&ran, guard] { ran = true; });
  });
  EXPECT_LT(took, 1.5);
  EXPECT_FALSE(ran);
  EXPECT_TRUE(destroyed);
}

TEST(ShutdownGenerator, ABodyThatCatchesItsOwnUnwindIsAbandonedWithAReport) {
  ::testing::internal::CaptureStderr();
  std::thread([] {
    Generator<int> g([](Generator<int>::Context& co) {
      for (;;) {
        try {
          co.yield(1);
        } catch (...) {  // swallows the unwind too
        }
      }
    });
    EXPECT_EQ(*g.next(), 1);
  }).join();  // ~Generator must end
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("Generator"), std::string::npos) << err;
  EXPECT_NE(err.find("leaked"), std::string::npos) << err;
}

// Reads from its stream when destroyed: while an exception unwinds the
// fiber, interrupts wait, so the read waits for data that never comes.
struct Connection {
  TcpListener listener = TcpListener::bind(SocketAddress::parse("127.0.0.1:0"));
  TcpStream client = TcpStream::connect(listener.local_address());
  TcpStream server = listener.accept();
};

// The fiber is abandoned with its read in the kernel (a RECV on io_uring):
// the loop's end cancels it and waits for it, and nothing else. The sockets
// outlive the loop, and close without it.
TEST(Shutdown, AReadLeftInTheKernelByAnAbandonedFiberEndsWithTheLoop) {
  std::unique_ptr<Connection> connection;
  auto [took, err] = shut_down([&connection](Loop& loop) {
    loop.spawn([&connection] {
      connection = std::make_unique<Connection>();
      ReadsWhenDestroyed reads{&connection->server};
      Event never;
      never.wait();
    });
    loop.call_soon([&loop] { loop.stop(); });
    loop.run();
  });
  EXPECT_LT(took, 2.0);
  EXPECT_NE(err.find("abandoned 1 fiber"), std::string::npos) << err;
  connection.reset();  // no loop now: each socket just closes its fd
}

TEST(ShutdownRun, RunMainEndsBoundedWithAStubbornFiberLeftBehind) {
  ::testing::internal::CaptureStderr();
  double took = 0;
  std::thread([&] {
    const TimePoint start = Clock::now();
    const int v = run([] {
      spawn([] {
        for (;;) {
          try {
            this_fiber::sleep_for(1h);
          } catch (const Cancelled&) {
          }
        }
      }).detach();
      this_fiber::yield();
      return 7;
    });
    EXPECT_EQ(v, 7);
    took = seconds_since(start);
  }).join();
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_LT(took, 1.5);
  EXPECT_NE(err.find("abandoned 1 fiber"), std::string::npos) << err;
}

}  // namespace
}  // namespace fiberloop
