// How read_file, write_file and File::open open a path: as open(2) would
// (links, O_CREAT on what exists, a directory), with one fd, and never
// waiting where open(2) would for good once the caller has gone (a file
// under a lease) nor taking a file's own ENXIO for a FIFO.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "fiberloop.h"
#include "tests/loop_fixture.h"
#include "tests/temp_dir.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using Files = testing::LoopTest;

std::string temp_dir() { return testing::temp_dir("open"); }

// The errno of the std::system_error `call` throws; 0 if none.
template <class Call>
int error_of(Call call) {
  try {
    call();
  } catch (const std::system_error& e) {
    return e.code().value();
  }
  return 0;
}

// Through symbolic links, as open(2) goes: one to nothing is where
// write_file and File::open with O_CREAT create the file (the worker's
// O_CREAT | O_EXCL refuses a link, and that was the error); O_NOFOLLOW
// refuses a link (ELOOP); a directory is EISDIR for read_file.
TEST_F(Files, SymbolicLinksAndDirectoriesAreOpenedAsOpenWould) {
  const std::string dir = temp_dir();
  ASSERT_EQ(::symlink("target", (dir + "/link").c_str()), 0);
  ASSERT_EQ(::symlink("other", (dir + "/link2").c_str()), 0);
  run([&] {
    write_file(dir + "/link", "through");
    EXPECT_EQ(read_file(dir + "/target"), "through");
    write_file(dir + "/link", "again");  // the file now: truncated through the link
    EXPECT_EQ(read_file(dir + "/target"), "again");
    File created = File::open(dir + "/link2", O_WRONLY | O_CREAT, 0600);
    EXPECT_EQ(created.write_at(std::string_view("x"), 0), 1u);
    EXPECT_EQ(read_file(dir + "/other"), "x");
    EXPECT_EQ(error_of([&] { File::open(dir + "/link", O_RDONLY | O_NOFOLLOW); }), ELOOP);
    EXPECT_EQ(error_of([&] { (void)read_file(dir); }), EISDIR);
    // O_CREAT reaches the kernel with the path, and with it the kernel's
    // rules for existing files (a directory: EISDIR; a file another user
    // left in a sticky directory: fs.protected_regular).
    EXPECT_EQ(error_of([&] { File::open(dir, O_RDONLY | O_CREAT); }), EISDIR);
  });
}

// Each open takes one fd: with a single one free, read_file, write_file
// and File::open still work (a look-up held open beside the file needed
// two).
TEST_F(Files, AnOpenNeedsOnlyOneFreeFd) {
  const std::string path = temp_dir() + "/one";
  run([&] {
    write_file(path, "one");
    rlimit saved{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
    rlimit few = saved;
    few.rlim_cur = 256;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &few), 0);
    std::vector<int> taken;
    for (int fd; (fd = ::dup(0)) >= 0;) taken.push_back(fd);
    ::close(taken.back());
    taken.pop_back();
    // Looked at once the fds are back: the sanitizers' checks need some.
    std::string read;
    int errors[3] = {};
    const auto call = [](int& error, auto fn) {
      try {
        fn();
      } catch (const std::system_error& e) {
        error = e.code().value();
      }
    };
    call(errors[0], [&] { read = read_file(path); });
    call(errors[1], [&] { write_file(path, "two"); });
    call(errors[2], [&] { File::open(path, O_RDONLY); });
    for (int fd : taken) ::close(fd);
    ::setrlimit(RLIMIT_NOFILE, &saved);
    EXPECT_EQ(read, "one");
    EXPECT_EQ(errors[0], 0);
    EXPECT_EQ(errors[1], 0);
    EXPECT_EQ(errors[2], 0);
    EXPECT_EQ(read_file(path), "two");
  });
}

// A File::open of a file under a lease whose holder never lets go, which
// times out: its worker stops asking for the lease's break and opens
// nothing (it kept trying until the holder went or the kernel broke the
// lease, 45 s by default, and then emptied the file with O_TRUNC).
TEST(FileLeases, AnOpenUnderALeaseStopsWhenItsCallerHasGone) {
  ASSERT_NE(::signal(SIGIO, SIG_IGN), SIG_ERR);  // the break's notice to the holder (us)
  const std::string path = temp_dir() + "/leased";
  Loop loop({.blocking_threads = 1});
  loop.run_until_complete([&] {
    write_file(path, "kept");
    const int holder = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(holder, 0);
    ASSERT_EQ(::fcntl(holder, F_SETLEASE, F_RDLCK), 0) << std::strerror(errno);
    EXPECT_THROW(with_timeout(50ms, [&] { File::open(path, O_WRONLY | O_TRUNC); }), TimeoutError);
    // The only worker is free again, long before the kernel would break the lease.
    EXPECT_EQ(with_timeout(10s, [] { return run_blocking([] { return 7; }); }), 7);
    ::close(holder);
    EXPECT_EQ(read_file(path), "kept");
  });
}

// A regular file whose open says ENXIO itself (a secret memfd, reached
// through /proc): that error, for write_file and File::open alike (it was
// taken for a FIFO swapped in: write_file went round 1000 times, and
// File::open said ESPIPE, "a FIFO").
TEST_F(Files, AFileThatSaysEnxioIsThatError) {
  const int secret = static_cast<int>(::syscall(SYS_memfd_secret, 0));
  ASSERT_GE(secret, 0) << "memfd_secret: " << std::strerror(errno);
  const std::string path = "/proc/self/fd/" + std::to_string(secret);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  ASSERT_TRUE(S_ISREG(st.st_mode));
  run([&] {
    EXPECT_EQ(error_of([&] { with_timeout(10s, [&] { write_file(path, "x"); }); }), ENXIO);
    EXPECT_EQ(error_of([&] { File::open(path, O_WRONLY); }), ENXIO);
  });
  ::close(secret);
}

}  // namespace
}  // namespace fiberloop
