// A FIFO put at a path between a worker's look at it (stat) and its open:
// read_file, write_file and File::open open whatever is there without
// waiting for a FIFO's other end, so no worker is left blocked in open(2).
// A plain thread swaps the path between a regular file and a FIFO (link
// and rename, each atomic) while a loop with one worker calls them with
// short timeouts. Before the opens became non-blocking, one in a few dozen
// landed on the FIFO after the look and held the only worker for good, so
// run_blocking no longer answered.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "fiberloop.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

constexpr int kCalls = 300;

// A path that a plain thread keeps swapping between a regular file holding
// `contents` and a FIFO nobody else opens.
class SwappedPath {
 public:
  explicit SwappedPath(const std::string& contents) {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string dir = std::string(base != nullptr ? base : "/tmp") + "/fiberloop_swap_XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = dir + "/path";
    file_ = dir + "/file";
    fifo_ = dir + "/fifo";
    spare_ = dir + "/spare";
    const int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 ||
        ::write(fd, contents.data(), contents.size()) != static_cast<ssize_t>(contents.size())) {
      throw std::runtime_error("cannot write " + file_);
    }
    ::close(fd);
    if (::mkfifo(fifo_.c_str(), 0600) != 0) throw std::runtime_error("mkfifo failed");
    put(file_);
    swapper_ = std::thread([this] {
      while (!stop_) {
        put(fifo_);
        put(file_);
        ++swaps_;
      }
    });
  }

  // Stops swapping, then opens the FIFO for both ends at once, so that an
  // open(2) still blocked in it (the fault under test) returns before the
  // loop's shutdown waits for its worker.
  ~SwappedPath() {
    stop_ = true;
    swapper_.join();
    const int both = ::open(fifo_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    std::this_thread::sleep_for(10ms);
    if (both >= 0) ::close(both);
  }

  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }
  int swaps() const { return swaps_; }

 private:
  // Points path_ at `target`'s inode in one step (a hard link renamed over it).
  void put(const std::string& target) {
    ::unlink(spare_.c_str());
    if (::link(target.c_str(), spare_.c_str()) != 0 ||
        ::rename(spare_.c_str(), path_.c_str()) != 0) {
      throw std::system_error(errno, std::generic_category(), "swap " + path_);
    }
  }

  std::string path_, file_, fifo_, spare_;
  std::atomic<bool> stop_{false};
  std::atomic<int> swaps_{0};
  std::thread swapper_;
};

// The loop's only worker still answers within a generous bound.
void expect_the_worker_free() {
  EXPECT_EQ(with_timeout(10s, [] { return run_blocking([] { return 7; }); }), 7)
      << "a file call left the only worker blocked";
}

TEST(FifoSwappedIn, ReadFileNeverLeavesAWorkerInOpen) {
  Loop loop({.blocking_threads = 1});
  SwappedPath swapped("data");
  loop.run_until_complete([&] {
    for (int i = 0; i < kCalls; ++i) {
      try {
        // The file, or a FIFO without a writer: read until the timeout.
        EXPECT_EQ(with_timeout(2ms, [&] { return read_file(swapped.path()); }), "data");
      } catch (const TimeoutError&) {
      }
    }
    expect_the_worker_free();
  });
  EXPECT_GT(swapped.swaps(), 0);
}

TEST(FifoSwappedIn, WriteFileNeverLeavesAWorkerInOpen) {
  Loop loop({.blocking_threads = 1});
  SwappedPath swapped("");
  loop.run_until_complete([&] {
    for (int i = 0; i < kCalls; ++i) {
      try {
        // The file, or a FIFO without a reader: tried again until the timeout.
        with_timeout(2ms, [&] { write_file(swapped.path(), "x"); });
      } catch (const TimeoutError&) {
      }
    }
    expect_the_worker_free();
    EXPECT_EQ(read_file(swapped.file()), "x");
  });
  EXPECT_GT(swapped.swaps(), 0);
}

TEST(FifoSwappedIn, FileOpenNeverLeavesAWorkerInOpen) {
  Loop loop({.blocking_threads = 1});
  SwappedPath swapped("data");
  loop.run_until_complete([&] {
    for (int i = 0; i < kCalls; ++i) {
      try {
        File file = with_timeout(2ms, [&] { return File::open(swapped.path(), O_RDONLY); });
        char byte = 0;
        EXPECT_EQ(file.read_at({&byte, 1}, 0), 1u);
        EXPECT_EQ(byte, 'd');
      } catch (const std::system_error& refused) {
        EXPECT_EQ(refused.code().value(), ESPIPE) << refused.what();  // the FIFO
      } catch (const TimeoutError&) {
      }
    }
    expect_the_worker_free();
  });
  EXPECT_GT(swapped.swaps(), 0);
}

}  // namespace
}  // namespace fiberloop
