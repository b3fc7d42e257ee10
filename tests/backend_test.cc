// The backends: which one a loop gets (and what happens where the kernel
// refuses io_uring), and the reactor's contract on each, chosen explicitly (the rest of the suite
// runs once per backend through FIBERLOOP_BACKEND: .ci/run). Real sockets, pipes and threads.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include "fiberloop.h"
#include "tests/thread_probe.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

TEST(Backend, ExplicitChoicesAreHonoured) {
  {
    Loop loop({.backend = Backend::epoll});
    EXPECT_EQ(loop.backend(), Backend::epoll);
  }
  {
    Loop loop({.backend = Backend::io_uring});  // this kernel allows io_uring
    EXPECT_EQ(loop.backend(), Backend::io_uring);
  }
  EXPECT_STREQ(to_string(Backend::io_uring), "io_uring");
  EXPECT_STREQ(to_string(Backend::epoll), "epoll");
}

TEST(Backend, AutomaticFollowsTheEnvironmentElseIoUring) {
  const char* saved = std::getenv("FIBERLOOP_BACKEND");
  const std::string restore = saved != nullptr ? saved : "";
  ::setenv("FIBERLOOP_BACKEND", "epoll", 1);
  EXPECT_EQ(Loop().backend(), Backend::epoll);
  ::setenv("FIBERLOOP_BACKEND", "io_uring", 1);
  EXPECT_EQ(Loop().backend(), Backend::io_uring);
  ::setenv("FIBERLOOP_BACKEND", "kqueue", 1);  // unknown: said once, ignored
  EXPECT_EQ(Loop().backend(), Backend::io_uring);
  ::unsetenv("FIBERLOOP_BACKEND");
  EXPECT_EQ(Loop().backend(), Backend::io_uring);
  if (saved != nullptr) ::setenv("FIBERLOOP_BACKEND", restore.c_str(), 1);
}

// Everything a file descriptor gives until its writers close it.
std::string read_all(int fd) {
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

// A kernel that refuses io_uring: a seccomp filter makes io_uring_setup(2)
// fail with EPERM, as Docker's default profile does, in a child process.
// Returns what the child wrote: {its stdout, its stderr}.
template <class Child>
std::pair<std::string, std::string> without_io_uring(Child child) {
  int out[2], err[2];
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog program{static_cast<unsigned short>(std::size(filter)), filter};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
      std::fputs("seccomp refused\n", stdout);
      std::_Exit(1);
    }
    try {
      child();
    } catch (const std::exception& e) {
      std::fprintf(stdout, "the child threw: %s\n", e.what());
      std::fflush(stdout);
      std::_Exit(2);
    }
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(0);
  }
  ::close(out[1]);
  ::close(err[1]);
  std::pair<std::string, std::string> result{read_all(out[0]), read_all(err[0])};
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << result.first;
  return result;
}

TEST(Backend, AutomaticFallsBackToEpollAndSaysWhyOnce) {
  const auto [out, err] = without_io_uring([] {
    ::unsetenv("FIBERLOOP_BACKEND");
    for (int i = 0; i < 2; ++i) {  // said once per process, not per loop
      Loop loop;
      std::fputs(to_string(loop.backend()), stdout);
    }
  });
  EXPECT_EQ(out, "epollepoll");
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(err.find("io_uring is not available"), std::string::npos) << err;
  EXPECT_NE(err.find("Operation not permitted"), std::string::npos) << err;
  EXPECT_NE(err.find("using epoll"), std::string::npos) << err;
}

TEST(Backend, IoUringAskedForExplicitlyThrowsWhenTheKernelRefuses) {
  const auto [out, err] = without_io_uring([] {
    try {
      Loop loop({.backend = Backend::io_uring});
      std::fputs("no throw", stdout);
    } catch (const std::system_error& e) {
      std::fputs(e.what(), stdout);
    }
    ::setenv("FIBERLOOP_BACKEND", "io_uring", 1);
    std::fputs(to_string(Loop().backend()), stderr);
  });
  EXPECT_NE(out.find("io_uring_queue_init"), std::string::npos) << out;
  EXPECT_NE(out.find("Operation not permitted"), std::string::npos) << out;
  EXPECT_NE(err.find("FIBERLOOP_BACKEND=io_uring, but"), std::string::npos) << err;
  EXPECT_NE(err.find("epoll"), std::string::npos) << err;
}

// A stream made on a loop of one backend and read from a fiber of a loop of
// the other moves there and waits that loop's way (readiness on epoll, a
// RECV operation on io_uring).
TEST(Backend, AStreamMovesBetweenLoopsOfDifferentBackends) {
  for (const Backend first : {Backend::io_uring, Backend::epoll}) {
    const Backend second = first == Backend::epoll ? Backend::io_uring : Backend::epoll;
    std::promise<Loop*> started;
    std::optional<Loop::KeepAlive> keep;
    std::thread other([&] {
      Loop loop({.backend = second});
      keep.emplace(loop.keep_alive());
      started.set_value(&loop);
      loop.run();  // until `keep` is dropped
    });
    Loop* elsewhere = started.get_future().get();
    {
      Loop loop({.backend = first});
      loop.run_until_complete([&] {
        auto listener = TcpListener::bind(SocketAddress::from_ip("127.0.0.1", 0));
        auto client = TcpStream::connect(listener.local_address());
        TcpStream server = listener.accept();
        auto echo = elsewhere->spawn([&] {
          char buf[16];
          const std::size_t n = server.read(buf);  // parks on the other loop
          server.write_all({buf, n});
          return Loop::current()->backend();
        });
        // Its read finds nothing and parks there, which moves the fd: this
        // loop lets go of it. (Written earlier, the read would take the
        // bytes at once, from here, and nothing would move.)
        for (int i = 0; i < 5000 && Loop::current()->stats().fds_registered != 2; ++i) {
          this_fiber::sleep_for(1ms);
        }
        EXPECT_EQ(Loop::current()->stats().fds_registered, 2u);
        client.write_all("moved");
        char back[16];
        std::size_t got = 0;
        while (got < 5) got += client.read({back + got, sizeof back - got});
        EXPECT_EQ(std::string(back, got), "moved");
        EXPECT_EQ(echo.join(), second);
        // The listener and the client stay; the server's fd stays away.
        EXPECT_EQ(Loop::current()->stats().fds_registered, 2u);
      });
    }
    keep.reset();
    other.join();
  }
}

// Sockets made on one loop outlive it and serve on the next loop of the
// thread, which the allocator tends to place at the dead loop's address:
// each socket must see that its loop is gone (not take the new loop for its
// own) and register with the new one, whatever either loop's backend. (With
// identity by address, a read on an epoll loop waited forever on the dead
// loop's registration, and one coming from an io_uring loop submitted to a
// backend without operations.)
TEST(Backend, SocketsThatOutliveTheirLoopServeOnTheNextLoop) {
  for (const Backend first : {Backend::epoll, Backend::io_uring}) {
    for (const Backend second : {Backend::epoll, Backend::io_uring}) {
      for (int round = 0; round < 5; ++round) {
        std::optional<TcpListener> listener;
        std::optional<TcpStream> client;
        std::optional<TcpStream> server;
        {
          Loop loop({.backend = first});
          loop.run_until_complete([&] {
            listener = TcpListener::bind(SocketAddress::from_ip("127.0.0.1", 0));
            client = TcpStream::connect(listener->local_address());
            server = listener->accept();
          });
        }
        Loop loop({.backend = second});
        loop.run_until_complete([&] {
          auto writer = spawn([&] {
            this_fiber::sleep_for(2ms);  // the read below waits first
            client->write_all("later");
          });
          char buf[16];
          std::size_t got = 0;
          with_timeout(5s, [&] {
            while (got < 5) got += server->read({buf + got, sizeof buf - got});
          });
          EXPECT_EQ(std::string(buf, got), "later");
          writer.join();
          auto accepting = spawn([&] { (void)listener->accept(); });
          this_fiber::sleep_for(2ms);  // the accept waits: the listener moves here
          TcpStream another = TcpStream::connect(listener->local_address());
          accepting.join();
          server->close();
          client->close();
          EXPECT_EQ(Loop::current()->stats().fds_registered, 2u)
              << "the listener and `another`, registered here; " << to_string(first) << " then "
              << to_string(second);
        });
      }
    }
  }
}

class EachBackend : public ::testing::TestWithParam<Backend> {};

// Sockets: many connections at once, each echoing until the client closes,
// then a peer that resets; every fd is unregistered at the end.
TEST_P(EachBackend, EchoesOverManyConnections) {
  Loop loop({.backend = GetParam()});
  ASSERT_EQ(loop.backend(), GetParam());
  constexpr int kClients = 64;
  int served = 0;
  loop.run_until_complete([&] {
    auto listener = TcpListener::bind(SocketAddress::from_ip("127.0.0.1", 0));
    const auto address = listener.local_address();
    TaskGroup group;
    group.spawn([&] {
      TaskGroup connections;
      for (int i = 0; i < kClients; ++i) {
        connections.spawn([conn = listener.accept(), &served]() mutable {
          char buf[4096];
          while (std::size_t n = conn.read(buf)) conn.write_all({buf, n});
          ++served;
        });
      }
      connections.join();
    });
    for (int i = 0; i < kClients; ++i) {
      group.spawn([&, i] {
        auto c = TcpStream::connect(address);
        const std::string message(1000 + i, static_cast<char>('a' + i % 26));
        std::string back(message.size(), '\0');
        for (int round = 0; round < 20; ++round) {
          c.write_all(message);
          c.read_exact(back);
          ASSERT_EQ(back, message);
        }
      });
    }
    group.join();
  });
  EXPECT_EQ(served, kClients);
  EXPECT_EQ(loop.stats().fds_registered, 0u);
}

// add_reader is level-triggered: a callback that reads one byte at a time
// runs again while bytes remain, with no new write.
TEST_P(EachBackend, AddReaderIsLevelTriggered) {
  Loop loop({.backend = GetParam()});
  int p[2];
  ASSERT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  ASSERT_EQ(::write(p[1], "abc", 3), 3);
  std::string got;
  loop.add_reader(p[0], [&] {
    char c;
    if (::read(p[0], &c, 1) == 1) got += c;
    if (got.size() == 3) loop.remove_reader(p[0]);
  });
  loop.run();
  EXPECT_EQ(got, "abc");
  EXPECT_EQ(loop.stats().fds_registered, 0u);
  ::close(p[0]);
  ::close(p[1]);
}

// Another thread's post wakes a loop blocked with no deadline; a sleeping
// fiber's timer fires while fds are being polled.
TEST_P(EachBackend, WakesForPostsAndTimers) {
  Loop loop({.backend = GetParam()});
  std::atomic<bool> posted{false};
  std::optional<Loop::KeepAlive> keep(loop.keep_alive());
  std::atomic<bool> slept{false};
  const pid_t loop_thread = testing::this_tid();
  std::thread other([&] {
    while (!slept.load()) std::this_thread::sleep_for(100us);
    testing::await_loop_wait(loop_thread);  // with no deadline: nothing left but the keep-alive
    loop.call_soon_threadsafe([&] {
      posted = true;
      keep.reset();
    });
  });
  auto sleeper = loop.spawn([&slept] {
    const auto start = Clock::now();
    this_fiber::sleep_for(5ms);
    slept = true;
    return Clock::now() - start;
  });
  loop.run();
  other.join();
  EXPECT_TRUE(posted.load());
  EXPECT_GE(sleeper.join(), 5ms);
}

// A fiber parked on a read is cancelled: its wait ends, the fd stays usable
// and registered once; closing it then unregisters it.
TEST_P(EachBackend, CancelledReadLeavesTheFdUsable) {
  Loop loop({.backend = GetParam()});
  loop.run_until_complete([] {
    auto listener = TcpListener::bind(SocketAddress::from_ip("127.0.0.1", 0));
    auto b = TcpStream::connect(listener.local_address());
    auto a = listener.accept();
    char buf[8];
    EXPECT_THROW(with_timeout(10ms, [&] { return a.read(buf); }), TimeoutError);
    b.write_all("x");
    EXPECT_EQ(a.read(buf), 1u);
    EXPECT_EQ(Loop::current()->stats().fds_registered, 3u);  // and the listener
  });
  EXPECT_EQ(loop.stats().fds_registered, 0u);
}

// Files: on io_uring, read_at and write_at are kernel operations; on epoll
// they run on workers. Either way: many fibers at their own offsets, short
// reads at the end, errors naming the path, and a fiber cancelled during a
// read gets the whole read first (the kernel owned its buffer until then).
TEST_P(EachBackend, FileReadsAndWritesAtOffsets) {
  const char* base = std::getenv("TEST_TMPDIR");
  const std::string path =
      std::string(base != nullptr ? base : "/tmp") + "/backend_file_" + std::to_string(::getpid());
  Loop loop({.backend = GetParam()});
  loop.run_until_complete([&] {
    constexpr int kFibers = 16;
    constexpr std::size_t kBlock = 4096;
    File out = File::open(path, O_RDWR | O_CREAT | O_TRUNC);
    TaskGroup writers;
    for (int i = 0; i < kFibers; ++i) {
      writers.spawn([&, i] {
        const std::string block(kBlock, static_cast<char>('a' + i));
        EXPECT_EQ(out.write_at(block, i * kBlock), kBlock);
      });
    }
    writers.join();
    TaskGroup readers;
    for (int i = 0; i < kFibers; ++i) {
      readers.spawn([&, i] {
        std::string block(kBlock, '\0');
        EXPECT_EQ(out.read_at(block, i * kBlock), kBlock);
        EXPECT_EQ(block, std::string(kBlock, static_cast<char>('a' + i))) << "block " << i;
      });
    }
    readers.join();
    char tail[100];
    EXPECT_EQ(out.read_at(tail, kFibers * kBlock - 10), 10u);  // short at the end
    EXPECT_EQ(out.read_at(tail, kFibers * kBlock), 0u);
    File read_only = File::open(path, O_RDONLY);
    try {
      read_only.write_at("x", 0);
      ADD_FAILURE() << "a write to a read-only file succeeded";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
      EXPECT_NE(std::string(e.what()).find("write_at " + path + " at offset 0"), std::string::npos)
          << e.what();
    }
    std::string big(1 << 20, '\0');
    std::size_t got = 0;
    auto reader = spawn([&] {
      got = read_only.read_at(big, 0);
      this_fiber::yield();  // the cancel lands here
      ADD_FAILURE() << "not cancelled";
    });
    this_fiber::yield();  // the reader is in read_at now
    reader.cancel();
    EXPECT_THROW(reader.join(), Cancelled);
    EXPECT_EQ(got, kFibers * kBlock);
  });
  ::unlink(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(Backends, EachBackend,
                         ::testing::Values(Backend::epoll, Backend::io_uring),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace fiberloop
