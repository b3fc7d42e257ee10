// Shutdown and the blocking workers: a file operation or run_blocking job
// still queued is cancelled, one under way is waited for within
// LoopOptions::blocking_shutdown_timeout and then given up on with its
// fiber named, never freed under a worker that may still use its memory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include "fiberloop.h"
#include "loop/run_blocking.h"
#include "tests/shutdown_helpers.h"
#include "tests/temp_dir.h"
#include "tests/thread_probe.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::a_thread_blocks_in;
using testing::blocks_in;
using testing::seconds_since;
using testing::shut_down;
using testing::thread_blocked_in;

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
