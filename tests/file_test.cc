// Files on the worker threads: round trips, errors naming the path, the
// loop running on while a worker blocks, and a caller's buffer never touched
// after the call returned (an interrupt waits for the operation).
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "fiberloop.h"
#include "io/internal/memory_limit.h"
#include "tests/loop_fixture.h"
#include "tests/temp_dir.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using Files = testing::LoopTest;

std::string temp_dir() { return testing::temp_dir("file"); }

TEST_F(Files, WriteFileThenReadFileRoundTrips) {
  const std::string dir = temp_dir();
  run([&] {
    std::string big(8 << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 % 251);
    write_file(dir + "/big", big);
    EXPECT_TRUE(read_file(dir + "/big") == big);
    write_file(dir + "/big", "short");  // truncates
    EXPECT_EQ(read_file(dir + "/big"), "short");
    write_file(dir + "/empty", "");
    EXPECT_EQ(read_file(dir + "/empty"), "");
  });
}

// Outside a fiber each call says which it was (it used to say
// "run_blocking", the pool it runs on).
TEST(FilesOutsideAFiber, TheErrorNamesTheCallAndThePath) {
  const auto message = [](auto call) -> std::string {
    try {
      call();
    } catch (const std::logic_error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(message([] { (void)read_file("/etc/hostname"); }).rfind("read_file /etc/hostname: ", 0),
            0u);
  EXPECT_EQ(message([] { write_file("/tmp/x", "x"); }).rfind("write_file /tmp/x (open): ", 0), 0u);
  EXPECT_EQ(message([] {
              (void)File::open("/etc/hostname", O_RDONLY);
            }).rfind("File::open /etc/hostname: ", 0),
            0u);
}

TEST_F(Files, ErrorsNameTheOperationAndThePath) {
  const std::string dir = temp_dir();
  run([&] {
    try {
      (void)read_file(dir + "/missing");
      ADD_FAILURE() << "no error";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ENOENT);
      EXPECT_NE(std::string(e.what()).find("read_file " + dir + "/missing"), std::string::npos)
          << e.what();
    }
    try {
      write_file(dir + "/no/such/dir/file", "x");
      ADD_FAILURE() << "no error";
    } catch (const std::system_error& e) {
      EXPECT_NE(std::string(e.what()).find("write_file " + dir + "/no/such/dir/file"),
                std::string::npos)
          << e.what();
    }
    try {
      (void)read_file(dir);  // a directory
      ADD_FAILURE() << "no error";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EISDIR) << e.what();
    }
    EXPECT_THROW(File::open(dir + "/missing", O_RDONLY), std::system_error);
  });
}

// A sparse file that claims more than the memory this process may have is
// refused up front, naming it and its size (the reservation threw a bare
// bad_alloc, or, overcommitted, the read took the machine's memory).
TEST_F(Files, ReadFileOfAFileLargerThanMemoryNamesItsSize) {
  const std::string path = temp_dir() + "/sparse";
  const std::uint64_t limit = internal::memory_limit();
  ASSERT_LE(limit, static_cast<std::uint64_t>(::sysconf(_SC_PHYS_PAGES)) *
                       static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)));
  const std::uint64_t size = limit + (1 << 20);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);  // a hole: no disk taken
  ::close(fd);
  run([&] {
    try {
      (void)read_file(path);
      ADD_FAILURE() << "no error";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ENOMEM) << e.what();
      EXPECT_NE(std::string(e.what()).find("read_file " + path + ": " + std::to_string(size) +
                                           " bytes are more than the memory this process may "
                                           "have (" +
                                           std::to_string(limit) + " bytes)"),
                std::string::npos)
          << e.what();
    }
  });
  ::unlink(path.c_str());
}

// The control groups' limits, v2 and v1, each the least along the path up
// to the hierarchy's root; "max" and missing files are no limit.
TEST(MemoryLimit, ReadsTheLeastLimitOfEachControlGroupAndItsAncestors) {
  const std::string outside = temp_dir(), root = outside + "/cgroup";
  std::filesystem::create_directories(root);
  std::ofstream(outside + "/memory.max") << "1\n";  // above the root: never read
  std::ofstream(root + "/memory.limit_in_bytes") << "1\n";
  const auto put = [&](const std::string& dir, const char* file, const char* text) {
    std::filesystem::create_directories(root + dir);
    std::ofstream(root + dir + "/" + file) << text;
  };
  put("/a", "memory.max", "3000\n");
  put("/a/b", "memory.max", "max\n");
  put("/memory/x", "memory.limit_in_bytes", "2000\n");
  put("/memory/x/y", "memory.limit_in_bytes", "9223372036854771712\n");
  constexpr std::uint64_t kNone = UINT64_MAX;
  EXPECT_EQ(internal::cgroup_memory_limit("0::/a/b\n", root), 3000u);
  EXPECT_EQ(internal::cgroup_memory_limit("4:memory:/x/y\n", root), 2000u);
  EXPECT_EQ(internal::cgroup_memory_limit("4:cpu,memory:/x/y\n0::/a/b\n", root), 2000u);
  EXPECT_EQ(internal::cgroup_memory_limit("4:cpu:/x/y\n0::/\n", root), kNone);
  EXPECT_EQ(internal::cgroup_memory_limit("garbage\n", root), kNone);
  EXPECT_EQ(internal::cgroup_memory_limit("0::/nowhere\n", root), kNone);
  std::filesystem::remove_all(outside);
}

// What read_file gathers from a source of unknown size (a FIFO, a device
// such as /dev/zero) grows no further than the memory the process may have:
// neither the string's size nor its capacity passes the limit (the size was
// checked only after each append, whose doubling could reserve twice the
// limit), and the append that would pass it is refused, the string kept.
TEST(MemoryLimit, ABoundedStringNeverGrowsPastTheLimit) {
  constexpr std::uint64_t kLimit = (std::uint64_t{40} << 20) + 123;  // past 16 MiB, where it asks
  internal::BoundedAppend bounded(kLimit);
  const std::string chunk((64 << 10) + 7, 'c');
  std::string out;
  std::uint64_t appended = 0;
  while (bounded.append(out, chunk.data(), chunk.size())) {
    appended += chunk.size();
    ASSERT_LE(out.capacity(), kLimit) << "at " << appended << " bytes";
  }
  EXPECT_EQ(out.size(), appended);
  EXPECT_LE(appended, kLimit);
  EXPECT_GT(appended + chunk.size(), kLimit);
  EXPECT_EQ(bounded.limit(), kLimit);
  const std::size_t room = static_cast<std::size_t>(kLimit - appended);
  EXPECT_TRUE(bounded.append(out, chunk.data(), room));  // up to the limit exactly
  EXPECT_FALSE(bounded.append(out, "x", 1));
  EXPECT_EQ(out.size(), kLimit);
}

TEST_F(Files, FileReadsAndWritesAtOffsets) {
  const std::string dir = temp_dir();
  run([&] {
    File f = File::open(dir + "/data", O_RDWR | O_CREAT | O_TRUNC);
    EXPECT_TRUE(f.is_open());
    EXPECT_EQ(f.path(), dir + "/data");
    EXPECT_EQ(f.write_at(std::string_view("hello world"), 0), 11u);
    EXPECT_EQ(f.write_at(std::string_view("HELLO"), 0), 5u);
    EXPECT_EQ(f.write_at(std::string_view("!"), 20), 1u);  // a hole
    EXPECT_EQ(f.size(), 21u);
    char buf[32];
    EXPECT_EQ(f.read_at(buf, 6), 15u);
    EXPECT_EQ(std::string(buf, 5), "world");
    EXPECT_EQ(buf[14], '!');
    EXPECT_EQ(f.read_at(buf, 21), 0u);  // at the end
    EXPECT_EQ(f.read_at(buf, 1000), 0u);
    f.sync();
    f.close();
    f.close();  // idempotent
    EXPECT_FALSE(f.is_open());
    try {
      (void)f.read_at(buf, 0);
      ADD_FAILURE() << "read a closed file";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
      EXPECT_NE(std::string(e.what()).find("read_at"), std::string::npos) << e.what();
    }
    EXPECT_EQ(read_file(dir + "/data").substr(0, 11), "HELLO world");
  });
}

TEST_F(Files, AWriteToAReadOnlyFileNamesPathAndOffset) {
  const std::string dir = temp_dir();
  run([&] {
    write_file(dir + "/ro", "x");
    File f = File::open(dir + "/ro", O_RDONLY);
    try {
      (void)f.write_at(std::string_view("y"), 7);
      ADD_FAILURE() << "wrote a read-only fd";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
      EXPECT_NE(std::string(e.what()).find(dir + "/ro at offset 7"), std::string::npos) << e.what();
    }
  });
}

// A cancel that arrives while an operation on the caller's buffer waits for
// its worker (queued behind a busy one) waits for it: the call returns
// with the data written, and the fiber is cancelled at its next suspension
// point. On epoll, where write_at is a worker's pwrite.
class OneWorkerOnEpoll : public testing::LoopTest {
 protected:
  OneWorkerOnEpoll() : LoopTest(LoopOptions{.backend = Backend::epoll, .blocking_threads = 1}) {}
};

TEST_F(OneWorkerOnEpoll, ACancelDuringAnOperationIsDeliveredAfterIt) {
  const std::string path = temp_dir() + "/data";
  const std::string data(1 << 20, 'x');
  run([&] {
    File f = File::open(path, O_RDWR | O_CREAT);
    std::atomic<bool> gate{false};
    auto busy = spawn([&] {  // the only worker, until the gate opens (10 s at most)
      run_blocking([&] {
        for (int i = 0; i < 1000 && !gate; ++i) std::this_thread::sleep_for(10ms);
      });
    });
    this_fiber::yield();  // its job goes first
    bool wrote = false;
    auto writer = spawn([&] {
      f.write_at(data, 0);  // queued behind it
      wrote = true;
      this_fiber::yield();  // the cancel lands here
      ADD_FAILURE() << "not cancelled";
    });
    this_fiber::yield();
    writer.cancel();
    this_fiber::sleep_for(10ms);
    EXPECT_FALSE(writer.done()) << "the cancel did not wait for the write";
    gate = true;
    busy.join();
    EXPECT_THROW(with_timeout(10s, [&] { writer.join(); }), Cancelled);
    EXPECT_TRUE(wrote);
    EXPECT_EQ(f.size(), data.size());
  });
}

// A write_file whose open is still queued when its fiber times out: the
// open runs later all the same, and must not empty the file then (no
// O_TRUNC: the truncation belongs to the writes, which never came).
class OneWorkerFiles : public testing::LoopTest {
 protected:
  OneWorkerFiles() : LoopTest(LoopOptions{.blocking_threads = 1}) {}
};

TEST_F(OneWorkerFiles, AWriteFileThatTimesOutBeforeItsOpenRunsTruncatesNothing) {
  const std::string path = temp_dir() + "/kept";
  run([&] {
    write_file(path, "keep");
    std::atomic<bool> release{false};
    auto busy = spawn([&] {  // the only worker, until released (10 s at most)
      run_blocking([&] {
        for (int i = 0; i < 1000 && !release; ++i) std::this_thread::sleep_for(10ms);
      });
    });
    this_fiber::yield();  // its job goes first
    EXPECT_THROW(with_timeout(10ms, [&] { write_file(path, "lost"); }), TimeoutError);
    release = true;
    busy.join();
    EXPECT_EQ(read_file(path), "keep");  // queued behind the late open
  });
}

// A file closed while another fiber's operation on it is queued (an
// io_uring READ not yet submitted, or a job behind a busy worker): the
// operation still runs on its own file, and the fd number is not free for
// anything else until it has ended.
class FileClose : public testing::LoopTest, public ::testing::WithParamInterface<Backend> {
 protected:
  FileClose() : LoopTest(LoopOptions{.backend = GetParam(), .blocking_threads = 1}) {}

  // Keeps the loop's only worker busy until `gate` opens (10 s at most), so
  // that a pool job queued meanwhile waits. In a fiber; join it at the end.
  static Task<void> occupy_the_worker(std::atomic<bool>& gate) {
    auto busy = spawn([&gate] {
      run_blocking([&gate] {
        for (int i = 0; i < 1000 && !gate; ++i) std::this_thread::sleep_for(10ms);
      });
    });
    this_fiber::yield();  // its job is queued first
    return busy;
  }
};

TEST_P(FileClose, AnOperationQueuedWhenTheFileIsClosedStillReadsItsOwnFile) {
  const std::string dir = temp_dir();
  run([&] {
    write_file(dir + "/mine", "mine");
    write_file(dir + "/theirs", "theirs");
    File file = File::open(dir + "/mine", O_RDONLY);
    const int number = file.fd();
    std::atomic<bool> gate{false};
    auto busy = occupy_the_worker(gate);
    char buf[16] = {};
    auto reader = spawn([&] { return file.read_at(buf, 0); });
    int theirs = -1;
    auto closer = spawn([&] {  // runs before the loop submits or the worker frees up
      file.close();
      theirs = ::open((dir + "/theirs").c_str(), O_RDONLY | O_CLOEXEC);
    });
    closer.join();
    EXPECT_FALSE(file.is_open());
    EXPECT_NE(theirs, number) << "the closed file's number was free while a read used it";
    EXPECT_THROW((void)file.size(), std::system_error);  // EBADF: closed for new operations
    gate = true;
    EXPECT_EQ(reader.join(), 4u);
    EXPECT_EQ(std::string(buf), "mine");
    EXPECT_EQ(::fcntl(number, F_GETFD), -1) << "the last operation did not close the file";
    ::close(theirs);
    busy.join();
  });
}

// Log rotation while a write is queued: the File assigned a new file
// leaves the queued read its old one, which the read closes as it ends.
TEST_P(FileClose, AFileAssignedOverWhileAnOperationIsQueuedLeavesItItsOwnFile) {
  const std::string dir = temp_dir();
  run([&] {
    write_file(dir + "/old", "old!");
    write_file(dir + "/new", "new!");
    File file = File::open(dir + "/old", O_RDONLY);
    File next = File::open(dir + "/new", O_RDONLY);
    const int old_number = file.fd();
    std::atomic<bool> gate{false};
    auto busy = occupy_the_worker(gate);
    char buf[16] = {};
    auto reader = spawn([&] { return file.read_at(buf, 0); });
    auto rotate = spawn([&] { file = std::move(next); });
    rotate.join();
    EXPECT_TRUE(file.is_open());
    EXPECT_EQ(file.path(), dir + "/new");
    EXPECT_NE(::fcntl(old_number, F_GETFD), -1) << "closed under the queued read";
    gate = true;
    EXPECT_EQ(reader.join(), 4u);
    EXPECT_EQ(std::string(buf), "old!");
    EXPECT_EQ(::fcntl(old_number, F_GETFD), -1) << "the read did not close the old file";
    char again[16] = {};
    EXPECT_EQ(file.read_at(again, 0), 4u);  // the new file is unharmed
    EXPECT_EQ(std::string(again), "new!");
    busy.join();
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, FileClose, ::testing::Values(Backend::epoll, Backend::io_uring),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return std::string(to_string(info.param));
                         });

}  // namespace
}  // namespace fiberloop
