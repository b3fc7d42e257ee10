// What a worker's look at a path finds is what read_file, write_file and
// File::open open: a FIFO put at the path after the look is never opened on
// the worker (which would block in open(2), or let a peer waiting in its own
// open through to an end that closes at once), and a FIFO is opened by the
// loop only when its fiber is there to use it. A plain thread swaps a path
// between a regular file and a FIFO (link and rename, each atomic) while a
// loop with one worker calls them with short timeouts: before, one in a
// few dozen landed on the FIFO after the look and held the only worker for
// good, so run_blocking no longer answered.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "fiberloop.h"
#include "tests/temp_dir.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

constexpr int kCalls = 300;

// A path that a plain thread keeps swapping between a regular file holding
// `contents` and a FIFO nobody else opens.
class SwappedPath {
 public:
  explicit SwappedPath(const std::string& contents) {
    const std::string dir = testing::temp_dir("swap");
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

// write_file calls that time out at random moments, against a reader that
// opens the FIFO again and again: none of them shows the reader a writer
// that came and went with nothing written (their opens, finished on a
// worker after the caller had timed out, did so hundreds of times in 3000
// calls). The loop opens the FIFO only when the fiber is there to write.
// (A write that meets EPIPE, the reader having just closed, may leave the
// reader's next open empty: the kernel's doing, allowed once per EPIPE.)
TEST(FifoSwappedIn, AWriteFileThatTimesOutNeverShowsAReaderAnEmptyOpen) {
  const std::string fifo = testing::temp_dir("swap") + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::atomic<bool> stop{false};
  std::atomic<int> sessions{0}, empty{0};
  std::atomic<bool> reader_done{false};
  std::thread reader([&] {
    while (!stop) {
      const int fd = ::open(fifo.c_str(), O_RDONLY | O_CLOEXEC);  // waits for a writer
      if (fd < 0) break;
      char buf[64];
      ssize_t total = 0;
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) total += n;
      ::close(fd);
      if (stop) break;
      ++sessions;
      if (total == 0) ++empty;
    }
    reader_done = true;
  });
  int epipes = 0;
  Loop loop({.blocking_threads = 1});
  loop.run_until_complete([&] {
    std::minstd_rand random(7);
    for (int i = 0; i < 1000; ++i) {
      try {
        with_timeout(std::chrono::microseconds(random() % 300), [&] { write_file(fifo, "x"); });
      } catch (const TimeoutError&) {
      } catch (const std::system_error& e) {
        // The reader closed between its end of one session and this
        // write; if its next open came before this close, that session is
        // empty, by the kernel's rules and not ours: counted apart.
        EXPECT_EQ(e.code().value(), EPIPE) << e.what();
        ++epipes;
      }
    }
  });
  stop = true;
  while (!reader_done) {  // lets the reader out of a last open
    const int release = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (release >= 0) ::close(release);
    std::this_thread::sleep_for(1ms);
  }
  reader.join();
  EXPECT_GT(sessions, 0);
  EXPECT_LE(empty, epipes) << "of " << sessions << " opens by the reader";
}

// A path that names neither a file nor a FIFO and that open(2) refuses
// with ENXIO (an eventfd through /proc/self/fd) is that error, at once: it
// was taken for a FIFO without a reader, which write_file waited for until
// its timeout and File::open refused as a FIFO.
TEST(FifoSwappedIn, AnEnxioThatIsNoFifoIsThatError) {
  const int event = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(event, 0);
  const std::string path = "/proc/self/fd/" + std::to_string(event);
  fiberloop::run([&] {
    for (const auto& call : {std::function<void()>([&] { write_file(path, "x"); }),
                             std::function<void()>([&] { File::open(path, O_WRONLY); })}) {
      try {
        with_timeout(10s, call);
        ADD_FAILURE() << "no error";
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ENXIO) << e.what();
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      }
    }
  });
  ::close(event);
}

// A FIFO removed and made again while write_file waits for a reader (as a
// daemon restarting does): write_file reaches the new one, since the loop
// tries the path, not the FIFO it first found (which nobody can open any
// more once unlinked).
TEST(FifoSwappedIn, WriteFileReachesAFifoMadeAgainWhileItWaits) {
  const std::string fifo = testing::temp_dir("swap") + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  fiberloop::run([&] {
    auto writer = spawn([&] { write_file(fifo, "fresh"); });
    this_fiber::sleep_for(
        20ms);  // (it waits with or without this; it only tries the old FIFO first)
    ASSERT_EQ(::unlink(fifo.c_str()), 0);
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    got = with_timeout(10s, [&] {
      return run_blocking([&] {
        std::string data;
        const int fd = ::open(fifo.c_str(), O_RDONLY | O_CLOEXEC);  // until the writer comes
        char buf[64];
        for (ssize_t n; fd >= 0 && (n = ::read(fd, buf, sizeof buf)) > 0;) data.append(buf, n);
        if (fd >= 0) ::close(fd);
        return data;
      });
    });
    with_timeout(10s, [&] { writer.join(); });
  });
  EXPECT_EQ(got, "fresh");
}

}  // namespace
}  // namespace fiberloop
