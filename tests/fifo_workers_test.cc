// FIFO calls on a loop with one blocking worker: a call that times out,
// queued or running, holds no worker and opens or creates nothing later
// (tests/fifo_test.cc has the calls themselves).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "fiberloop.h"
#include "tests/fifo_helpers.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::make_fifo;
using testing::occupy_the_worker;

// With one worker: FIFO calls that time out hold none, so the next job
// runs (before, each left its worker blocked in open(2) for good, and
// blocking_threads of them stopped every file call, resolve() and
// run_blocking()).
TEST(FifoWorkers, FifoCallsThatTimeOutHoldNoWorker) {
  Loop loop({.blocking_threads = 1});
  const std::string fifo = make_fifo();
  loop.run_until_complete([&] {
    for (int i = 0; i < 3; ++i) {
      EXPECT_THROW(with_timeout(10ms, [&] { read_file(fifo); }), TimeoutError);
      EXPECT_THROW(with_timeout(10ms, [&] { write_file(fifo, "x"); }), TimeoutError);
    }
    EXPECT_EQ(with_timeout(10s, [] { return run_blocking([] { return 7; }); }), 7);
  });
}

// A reader that opens the FIFO and never reads: write_file's writes wait
// on the loop, so a timeout ends them and no worker is held (they used to
// block a worker in write(2), deaf to the timeout, until the reader went).
TEST(FifoWorkers, AWriteFileToAReaderThatNeverReadsEndsAtItsTimeout) {
  Loop loop({.blocking_threads = 1});
  const std::string fifo = make_fifo();
  std::atomic<bool> done{false};
  std::thread reader([&] {
    const int fd = ::open(fifo.c_str(), O_RDONLY | O_CLOEXEC);
    for (int i = 0; i < 1000 && !done; ++i) std::this_thread::sleep_for(10ms);  // reads nothing
    if (fd >= 0) ::close(fd);
  });
  loop.run_until_complete([&] {
    const std::string data(1 << 20, 'w');  // far more than a FIFO holds
    EXPECT_THROW(with_timeout(200ms, [&] { write_file(fifo, data); }), TimeoutError);
    EXPECT_EQ(with_timeout(5s, [] { return run_blocking([] { return 7; }); }), 7);
  });
  done = true;
  reader.join();
}

// A read_file or write_file whose job is still queued (the only worker is
// busy) when the caller times out: the job, run later, opens nothing, so a
// writer or reader waiting in open(2) is not let through to a peer that
// closes at once.
TEST(FifoWorkers, AQueuedCallThatTimedOutOpensNothingLater) {
  Loop loop({.blocking_threads = 1});
  const std::string fifo = make_fifo();
  std::atomic<bool> writer_in{false}, reader_in{false};
  std::thread writer([&] {  // blocks in open(2) until a reader comes
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
    writer_in = true;
    if (fd >= 0) ::close(fd);
  });
  loop.run_until_complete([&] {
    std::atomic<bool> gate{false};
    auto busy = occupy_the_worker(gate);
    EXPECT_THROW(with_timeout(20ms, [&] { read_file(fifo); }), TimeoutError);
    gate = true;
    busy.join();
    run_blocking([] {});  // after the queued job, which has run by now
    this_fiber::sleep_for(20ms);
    EXPECT_FALSE(writer_in) << "the queued read_file opened the FIFO after its caller left";
  });
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_CLOEXEC);  // lets the writer go
  writer.join();
  if (reader >= 0) ::close(reader);

  std::thread late_reader([&] {  // and the other way round
    const int fd = ::open(fifo.c_str(), O_RDONLY | O_CLOEXEC);
    reader_in = true;
    if (fd >= 0) ::close(fd);
  });
  loop.run_until_complete([&] {
    std::atomic<bool> gate{false};
    auto busy = occupy_the_worker(gate);
    EXPECT_THROW(with_timeout(20ms, [&] { write_file(fifo, "x"); }), TimeoutError);
    gate = true;
    busy.join();
    run_blocking([] {});
    this_fiber::sleep_for(20ms);
    EXPECT_FALSE(reader_in) << "the queued write_file opened the FIFO after its caller left";
  });
  const int late_writer = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
  late_reader.join();
  if (late_writer >= 0) ::close(late_writer);
}

// A write_file still queued when its caller timed out creates nothing
// later (the open's job looks at `abandoned` first), and neither does a
// File::open with O_CREAT.
TEST(FifoWorkers, AQueuedOpenThatTimedOutCreatesNothingLater) {
  Loop loop({.blocking_threads = 1});
  const std::string dir = make_fifo() + "-dir";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  loop.run_until_complete([&] {
    std::atomic<bool> gate{false};
    auto busy = occupy_the_worker(gate);
    EXPECT_THROW(with_timeout(20ms, [&] { write_file(dir + "/by_write_file", "x"); }),
                 TimeoutError);
    EXPECT_THROW(with_timeout(20ms, [&] { File::open(dir + "/by_open", O_WRONLY | O_CREAT); }),
                 TimeoutError);
    gate = true;
    busy.join();
    run_blocking([] {});  // after the queued jobs, which have run by now
  });
  struct stat st {};
  EXPECT_NE(::stat((dir + "/by_write_file").c_str(), &st), 0) << "write_file created it late";
  EXPECT_NE(::stat((dir + "/by_open").c_str(), &st), 0) << "File::open created it late";
}

}  // namespace
}  // namespace fiberloop
