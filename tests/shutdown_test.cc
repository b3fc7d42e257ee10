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
#include "tests/temp_dir.h"
#include "tests/thread_probe.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::a_thread_blocks_in;
using testing::blocks_in;
using testing::ReadsWhenDestroyed;
using testing::thread_blocked_in;

double seconds_since(TimePoint start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Sets `flag` when destroyed: shows a callback was destroyed, run or not.
struct SetOnDestroy {
  std::atomic<bool>* flag;
  ~SetOnDestroy() { flag->store(true); }
};

// Runs `body` with a fresh Loop on a thread of its own (abandoned stacks
// are leaked with that thread's pool, not this one's); returns how long the
// Loop's destruction took, in seconds, and what it printed on stderr.
template <class F>
std::pair<double, std::string> shut_down(F body, LoopOptions options = {}) {
  double took = 0;
  ::testing::internal::CaptureStderr();
  std::thread([&] {
    auto loop = std::make_unique<Loop>(std::move(options));
    body(*loop);
    const TimePoint start = Clock::now();
    loop.reset();
    took = seconds_since(start);
  }).join();
  return {took, ::testing::internal::GetCapturedStderr()};
}

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

// An fd a worker job opened, closed with the job's result (dropped when the
// fiber that asked has gone).
struct OwnedFd {
  explicit OwnedFd(int fd) : fd(fd) {}
  OwnedFd(OwnedFd&& other) noexcept : fd(std::exchange(other.fd, -1)) {}
  OwnedFd& operator=(OwnedFd&&) = delete;
  ~OwnedFd() {
    if (fd >= 0) ::close(fd);
  }
  int fd;
};

// A run_blocking job that opens `fifo` for reading: it waits in open(2)
// until a writer comes (File::open refuses FIFOs, and read_file waits for
// them on the loop, so the test blocks a worker itself).
OwnedFd open_on_a_worker(const std::string& fifo) {
  return run_blocking([fifo] { return OwnedFd(::open(fifo.c_str(), O_RDONLY | O_CLOEXEC)); });
}

// Runs `loop` until a thread blocks in system call `nr` (10 s at most).
void run_until_a_thread_blocks_in(Loop& loop, long nr) {
  loop.spawn([&loop, nr] {
    for (int i = 0; i < 10'000 && !a_thread_blocks_in(nr); ++i) this_fiber::sleep_for(1ms);
    loop.stop();
  });
  loop.run();
}

// A file operation waits for its worker whatever interrupts it (the worker
// may be using the caller's buffer). One still queued when the loop closes
// never runs: the closing loop drops it and the fiber is cancelled like any
// other, rather than waiting for a completion that never comes and being
// abandoned.
TEST(Shutdown, AFileOperationQueuedBehindABusyWorkerIsCancelledNotAbandoned) {
  std::atomic<bool> gate{false};
  std::string outcome = "never resumed";
  char path[] = "/tmp/fiberloop_shutdown_XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  auto [took, err] = shut_down(
      [&](Loop& loop) {
        loop.spawn([&] {
          File file = File::open(path, O_RDONLY);
          // The loop's only worker, busy until the gate opens (10 s at most).
          spawn([&] {
            run_blocking([&] {
              for (int i = 0; i < 1000 && !gate; ++i) std::this_thread::sleep_for(10ms);
            });
          });
          this_fiber::yield();  // its job is queued first
          // The loop stops once the fiber has parked in size() below.
          loop.call_soon([&loop] { loop.stop(); });
          try {
            (void)file.size();  // queued behind it
            outcome = "returned";
          } catch (const Cancelled&) {
            outcome = "cancelled";
          }
          gate = true;
        });
        loop.run();
      },
      LoopOptions{.blocking_threads = 1});
  ::unlink(path);
  EXPECT_EQ(outcome, "cancelled");
  EXPECT_EQ(err.find("abandoned"), std::string::npos) << err;
}

// A worker job that is running (or done, its completion not yet taken)
// when the loop closes: the completion still reaches the fiber,
// which then ends with the cancel, instead of being abandoned.
TEST(Shutdown, AWorkerJobThatRanIsCompletedThenCancelledNotAbandoned) {
  const std::string dir = testing::temp_dir("shutdown");
  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string outcome = "never resumed";
  int writer = -1;
  auto [took, err] = shut_down([&](Loop& loop) {
    loop.spawn([&] {
      try {
        const OwnedFd file = open_on_a_worker(fifo);  // blocks in open(2) until a writer comes
        outcome = "opened";
        this_fiber::yield();
        outcome += ", not cancelled";
      } catch (const Cancelled&) {
        outcome += ", cancelled";
      }
    });
    run_until_a_thread_blocks_in(loop, SYS_openat);
    const pid_t worker = thread_blocked_in(SYS_openat);
    ASSERT_NE(worker, 0) << "no worker thread blocked in open(2) after 10 s";
    // The loop is not running: the open finishes now, and its completion
    // waits in the loop's queue when the shutdown begins (the worker has
    // posted it once it waits for its next job; 10 s at most).
    writer = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
    for (int i = 0; i < 10'000 && !blocks_in(worker, SYS_futex); ++i) {
      std::this_thread::sleep_for(1ms);
    }
  });
  ::close(writer);
  ::unlink(fifo.c_str());
  ::rmdir(dir.c_str());
  EXPECT_EQ(outcome, "opened, cancelled");
  EXPECT_EQ(err.find("abandoned"), std::string::npos) << err;
}

// A worker job that never ends (an open() of a FIFO without its other end)
// whose fiber was cancelled: the shutdown gives up on it after
// LoopOptions::blocking_shutdown_timeout instead of waiting for ever, and
// names it; released later, it finishes on its detached worker without
// touching the loop (the fd it opens is closed with the dropped result).
TEST(Shutdown, AWorkerJobThatNeverEndsIsGivenUpOnAfterTheTimeout) {
  const std::string dir = testing::temp_dir("shutdown");
  const std::string fifo = dir + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string outcome = "never resumed";
  auto [took, err] = shut_down(
      [&](Loop& loop) {
        loop.spawn([&] {
          try {
            const OwnedFd file = open_on_a_worker(fifo);  // blocks until a writer comes
            outcome = "opened";
          } catch (const Cancelled&) {
            outcome = "cancelled";
          }
        });
        run_until_a_thread_blocks_in(loop, SYS_openat);
      },
      LoopOptions{.blocking_shutdown_timeout = 200ms});
  EXPECT_EQ(outcome, "cancelled");
  EXPECT_GE(took, 0.2);
  EXPECT_LT(took, 10.0);
  EXPECT_NE(err.find("gave up on 1 worker job still running"), std::string::npos) << err;
  EXPECT_NE(err.find("run_blocking, for fiber"), std::string::npos) << err;
  // Now the open returns on its worker, which closes the fd: the FIFO's
  // write end then sees its reader gone.
  const int writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(writer, 0) << "the worker no longer waits in open()";
  pollfd p{writer, 0, 0};
  ASSERT_EQ(::poll(&p, 1, 10'000), 1);
  EXPECT_TRUE(p.revents & POLLERR);
  std::this_thread::sleep_for(50ms);  // the worker drops the completion and exits
  ::close(writer);
  ::unlink(fifo.c_str());
  ::rmdir(dir.c_str());
}

// The same for a run_blocking() job, with the timeout at 0: given up on as
// soon as the shutdown's grace for fibers is over.
TEST(Shutdown, ARunBlockingJobThatNeverEndsIsGivenUpOnWithTimeoutZero) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  std::atomic<bool> started{false}, returned{false};
  std::string outcome = "never resumed";
  auto [took, err] = shut_down(
      [&](Loop& loop) {
        loop.spawn([&] {
          try {
            run_blocking([&] {
              started = true;
              char c;
              (void)!::read(fds[0], &c, 1);  // nobody writes, until the test does
              returned = true;
            });
            outcome = "returned";
          } catch (const Cancelled&) {
            outcome = "cancelled";
          }
        });
        loop.spawn([&] {
          for (int i = 0; i < 10'000 && !started; ++i) this_fiber::sleep_for(1ms);
          loop.stop();
        });
        loop.run();
      },
      LoopOptions{.blocking_shutdown_timeout = Duration::zero()});
  EXPECT_EQ(outcome, "cancelled");
  EXPECT_LT(took, 10.0);
  EXPECT_FALSE(returned);
  EXPECT_NE(err.find("gave up on 1 worker job"), std::string::npos) << err;
  EXPECT_NE(err.find("  run_blocking, for fiber"), std::string::npos) << err;
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  for (int i = 0; i < 1000 && !returned; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(returned);
  std::this_thread::sleep_for(50ms);  // the worker drops the completion and exits
  ::close(fds[0]);
  ::close(fds[1]);
}

// A worker job that works on its caller's memory (a file operation's:
// write_at, read_at, write_file's writes to a file) is not given up on: the
// shutdown names it once the timeout has passed and waits on until it ends
// (here, once the test lets it), its fiber abandoned meanwhile. The job is
// the file operations' own kind (run_on_worker, not interruptible), made
// to wait on a pipe that only the test writes.
TEST(Shutdown, AWorkerJobOnItsCallersMemoryIsWaitedForAndNamed) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  std::atomic<bool> started{false};
  std::thread release;
  auto [took, err] = shut_down(
      [&](Loop& loop) {
        loop.spawn([&] {
          char c = 0;
          internal::run_on_worker(
              [&] {
                started = true;
                (void)!::read(fds[0], &c, 1);
              },
              /*interruptible=*/false, "a job on its caller's buffer");
        });
        loop.spawn([&] {
          for (int i = 0; i < 10'000 && !started; ++i) this_fiber::sleep_for(1ms);
          loop.stop();
        });
        loop.run();
        release = std::thread([&] {  // well after the timeout
          std::this_thread::sleep_for(2s);
          (void)!::write(fds[1], "x", 1);
        });
      },
      LoopOptions{.blocking_shutdown_timeout = 100ms});
  release.join();
  EXPECT_GE(took, 1.0);  // it waited for the release
  EXPECT_NE(err.find("abandoned 1 fiber"), std::string::npos) << err;
  EXPECT_NE(err.find("keeps waiting for 1 worker job"), std::string::npos) << err;
  EXPECT_NE(err.find("a job on its caller's buffer, for fiber"), std::string::npos) << err;
  EXPECT_EQ(err.find("gave up"), std::string::npos) << err;
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace
}  // namespace fiberloop
