// FIFOs through read_file, write_file and File::open: a FIFO's other end may
// never come, so none of them waits for it on a worker. read_file opens
// without waiting and reads on the loop, write_file looks for a reader from
// the loop, and File (which reads and writes at offsets) refuses a FIFO
// before opening it. A call that ends (cancelled, timed out) leaves nothing
// behind: no worker blocked in open(2), no reader to take a later writer's
// data, no writer for a later reader to see come and go. (With one worker,
// queued and running: tests/fifo_workers_test.cc.)
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <exception>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "fiberloop.h"
#include "tests/fifo_helpers.h"
#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using Fifos = testing::LoopTest;
using testing::make_fifo;

// Whether the FIFO has a reader: a non-blocking open for writing succeeds
// only then (ENXIO otherwise).
bool has_a_reader(const std::string& fifo) {
  const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// Whether this process holds the FIFO open (an fd in /proc/self/fd naming
// it): unlike has_a_reader(), a look that its reader does not notice.
bool held_open(const std::string& fifo) {
  std::error_code failed;
  for (std::filesystem::directory_iterator fd("/proc/self/fd", failed), end; !failed && fd != end;
       fd.increment(failed)) {
    std::error_code unreadable;
    if (std::filesystem::read_symlink(fd->path(), unreadable) == fifo) return true;
  }
  return false;
}

// Blocks SIGPIPE for the calling thread: its writes get EPIPE once their
// reader has gone.
void block_sigpipe() {
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
}

// Writes `data` to the FIFO from a plain thread once a reader opens it
// (a blocking open), then closes it; SIGPIPE blocked.
std::thread write_when_read(const std::string& fifo, std::string data) {
  return std::thread([fifo, data = std::move(data)] {
    block_sigpipe();
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
    std::string_view rest = data;
    while (fd >= 0 && !rest.empty()) {
      const ssize_t n = ::write(fd, rest.data(), rest.size());
      if (n <= 0) break;
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
    if (fd >= 0) ::close(fd);
  });
}

TEST_F(Fifos, ReadFileWaitsForAWriterOnTheLoopAndReadsToItsEnd) {
  const std::string fifo = make_fifo();
  std::string data(1 << 20, '\0');  // more than a pipe holds
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 % 251);
  std::thread writer;
  run([&] {
    auto reader = spawn([&] { return read_file(fifo); });
    for (int i = 0; i < 10'000 && !held_open(fifo); ++i) this_fiber::sleep_for(1ms);
    ASSERT_TRUE(held_open(fifo)) << "read_file did not open the FIFO in 10 s";
    writer = write_when_read(fifo, data);
    EXPECT_TRUE(with_timeout(10s, [&] { return reader.join(); }) == data);
  });
  writer.join();
}

// The user's report: a read_file that timed out took the next writer's
// data (its worker, still in open(2), read it and dropped it), so the
// next read_file timed out with nothing. Now it leaves no reader behind.
TEST_F(Fifos, AReadFileThatTimedOutLeavesNoReaderToTakeTheNextWritersData) {
  const std::string fifo = make_fifo();
  std::thread writer;
  run([&] {
    EXPECT_THROW(with_timeout(20ms, [&] { read_file(fifo); }), TimeoutError);
    EXPECT_FALSE(has_a_reader(fifo)) << "a reader is left behind";
    writer = write_when_read(fifo, "hello from the writer\n");
    EXPECT_EQ(with_timeout(10s, [&] { return read_file(fifo); }), "hello from the writer\n");
  });
  writer.join();
}

TEST_F(Fifos, ACancelledReadFileReturnsAtOnceAndLeavesNoReader) {
  const std::string fifo = make_fifo();
  run([&] {
    auto reader = spawn([&] { return read_file(fifo); });
    for (int i = 0; i < 10'000 && !held_open(fifo); ++i) this_fiber::sleep_for(1ms);
    ASSERT_TRUE(held_open(fifo)) << "read_file did not open the FIFO in 10 s";
    reader.cancel();
    EXPECT_THROW(reader.join(), Cancelled);
    EXPECT_FALSE(has_a_reader(fifo));
  });
}

// A FIFO fed a byte each millisecond for ever: a timeout reaches the read
// between two chunks (the loop reads it, and yields after each).
TEST_F(Fifos, AReadFileOfAnEndlessWriterEndsAtItsTimeout) {
  const std::string fifo = make_fifo();
  std::atomic<bool> stop{false};
  std::thread feeder([&] {
    block_sigpipe();
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
    while (fd >= 0 && !stop && ::write(fd, "x", 1) == 1) std::this_thread::sleep_for(1ms);
    if (fd >= 0) ::close(fd);
  });
  run([&] { EXPECT_THROW(with_timeout(50ms, [&] { read_file(fifo); }), TimeoutError); });
  stop = true;
  feeder.join();
}

TEST_F(Fifos, WriteFileWaitsForAReaderOnTheLoop) {
  const std::string fifo = make_fifo();
  const std::string data(1 << 20, 'w');
  std::string got;
  std::thread reader;
  run([&] {
    auto writer = spawn([&] { write_file(fifo, data); });
    this_fiber::sleep_for(5ms);  // looking for a reader
    EXPECT_FALSE(writer.done());
    reader = std::thread([&] {
      const int fd = ::open(fifo.c_str(), O_RDONLY | O_CLOEXEC);
      char buf[65536];
      ssize_t n;
      while (fd >= 0 && (n = ::read(fd, buf, sizeof buf)) > 0) got.append(buf, n);
      if (fd >= 0) ::close(fd);
    });
    with_timeout(10s, [&] { writer.join(); });
  });
  reader.join();
  EXPECT_TRUE(got == data) << got.size() << " bytes of " << data.size();
}

// A write_file that timed out waiting for a reader leaves no open behind:
// a reader that comes later sees no writer come and go (no hang-up, no
// end of file), and no worker is held.
TEST_F(Fifos, AWriteFileThatTimedOutLeavesNoWriterForALaterReader) {
  const std::string fifo = make_fifo();
  run([&] {
    EXPECT_THROW(with_timeout(20ms, [&] { write_file(fifo, "x"); }), TimeoutError);
    const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(reader, 0);
    pollfd p{reader, POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 200), 0) << "revents " << p.revents;
    ::close(reader);
  });
}

// A writer as fast as it can go: the read yields after each 64 KiB, so
// the timeout reaches it even when data never runs out.
TEST_F(Fifos, AReadFileOfAFastEndlessWriterEndsAtItsTimeout) {
  const std::string fifo = make_fifo();
  std::atomic<bool> stop{false};
  std::thread feeder([&] {
    block_sigpipe();
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
    const std::string chunk(64 * 1024, 'f');
    while (fd >= 0 && !stop && ::write(fd, chunk.data(), chunk.size()) > 0) {
    }
    if (fd >= 0) ::close(fd);
  });
  run([&] { EXPECT_THROW(with_timeout(100ms, [&] { read_file(fifo); }), TimeoutError); });
  stop = true;
  feeder.join();
}

// What an exception says ("no error" for none).
std::string what(const std::exception_ptr& error) {
  if (!error) return "no error";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "not a std::exception";
  }
}

// A FIFO the loop cannot open (here: no fd left, EMFILE) is an error naming
// it, at once (it used to go back and forth between the worker's look and
// the loop's open for ever).
TEST_F(Fifos, AFifoThatCannotBeOpenedIsAnErrorNotALoop) {
  const std::string fifo = make_fifo();
  run([&] {
    rlimit saved{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
    std::vector<int> taken;
    rlimit few = saved;
    few.rlim_cur = 256;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &few), 0);
    for (int fd; (fd = ::dup(0)) >= 0;) taken.push_back(fd);  // every fd below the limit
    // Looked at once the fds are back: the sanitizers' checks need some.
    std::exception_ptr read_error, write_error;
    try {
      with_timeout(5s, [&] { (void)read_file(fifo); });
    } catch (...) {
      read_error = std::current_exception();
    }
    try {
      with_timeout(5s, [&] { write_file(fifo, "x"); });
    } catch (...) {
      write_error = std::current_exception();
    }
    for (int fd : taken) ::close(fd);
    ::setrlimit(RLIMIT_NOFILE, &saved);
    EXPECT_NE(what(read_error).find("read_file " + fifo + ": Too many open files"),
              std::string::npos)
        << what(read_error);
    EXPECT_NE(what(write_error).find("write_file " + fifo + " (open): Too many open files"),
              std::string::npos)
        << what(write_error);
  });
}

// A reader that takes some and goes: write_file says EPIPE, naming the
// path, and no SIGPIPE ends the process (its default here, on the loop's
// thread).
TEST_F(Fifos, AReaderThatGoesIsEpipeNotSigpipe) {
  const std::string fifo = make_fifo();
  ASSERT_EQ(::signal(SIGPIPE, SIG_DFL), SIG_DFL);
  std::thread reader([&] {
    const int fd = ::open(fifo.c_str(), O_RDONLY | O_CLOEXEC);
    char buf[1024];
    (void)!::read(fd, buf, sizeof buf);
    ::close(fd);
  });
  run([&] {
    try {
      write_file(fifo, std::string(4 << 20, 'p'));
      ADD_FAILURE() << "the write went through";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EPIPE);
      EXPECT_NE(std::string(e.what()).find("write_file " + fifo + " (write)"), std::string::npos)
          << e.what();
    }
    sigset_t pending;
    sigpending(&pending);
    EXPECT_EQ(sigismember(&pending, SIGPIPE), 0) << "a SIGPIPE was left pending";
  });
  reader.join();
}

// File is for reads and writes at offsets, which a FIFO has not: refused
// before the open, so its other end sees nothing (a blocked writer is not
// let through to write into a reader that closes at once).
TEST_F(Fifos, FileOpenRefusesAFifoWithoutOpeningIt) {
  const std::string fifo = make_fifo();
  run([&] {
    for (const int flags : {O_RDONLY, O_WRONLY, O_RDWR}) {
      try {
        File f = File::open(fifo, flags);
        ADD_FAILURE() << "File::open of a FIFO worked";
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), ESPIPE);
        const std::string what = e.what();
        EXPECT_NE(what.find("File::open " + fifo + ": a FIFO"), std::string::npos) << what;
        EXPECT_NE(what.find("read_file"), std::string::npos) << what;
      }
      EXPECT_FALSE(has_a_reader(fifo));
    }
    // O_CREAT | O_EXCL says EEXIST, as asked; O_PATH opens no file and works.
    try {
      File f = File::open(fifo, O_WRONLY | O_CREAT | O_EXCL);
      ADD_FAILURE() << "O_EXCL over a FIFO worked";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EEXIST) << e.what();
    }
    EXPECT_TRUE(File::open(fifo, O_PATH).is_open());
    try {
      File f = File::open(fifo, O_RDONLY | O_DIRECTORY);
      ADD_FAILURE() << "O_DIRECTORY on a FIFO worked";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ENOTDIR) << e.what();
    }
    // Under O_NOFOLLOW a link to a FIFO is the link: ELOOP, as open(2) says.
    const std::string link = fifo + "-link";
    ASSERT_EQ(::symlink(fifo.c_str(), link.c_str()), 0);
    try {
      File f = File::open(link, O_RDONLY | O_NOFOLLOW);
      ADD_FAILURE() << "O_NOFOLLOW through a link worked";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ELOOP) << e.what();
    }
  });
}

}  // namespace
}  // namespace fiberloop
