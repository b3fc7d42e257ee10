// Errors a user can cause, each on its own: the message names the call and
// the object (fd, address, signal), nothing leaks (fds, blocked signals),
// and both backends answer alike.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;
using testing::open_fds;

// Runs `fn` on a new thread, which has no Loop, and waits for it.
template <class F>
void on_plain_thread(F fn) {
  std::thread(fn).join();
}

// Expects `fn` to throw E whose what() contains every one of `parts`.
template <class E, class F>
void expect_throw_naming(F fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "no exception";
  } catch (const E& e) {
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "'" << e.what() << "' does not name '" << part << "'";
    }
  }
}

// A socket made on a thread without a Loop: the error names the call and
// its address, and the socket it made (if any) is closed.
TEST(NoLoop, SocketsNameTheCallAndLeakNoFd) {
  const auto before = open_fds();
  on_plain_thread([] {
    expect_throw_naming<std::logic_error>(
        [] { TcpListener::bind(SocketAddress::parse("127.0.0.1:0")); },
        {"bind 127.0.0.1:0", "no Loop"});
    expect_throw_naming<std::logic_error>(
        [] { UdpSocket::bind(SocketAddress::parse("127.0.0.1:0")); }, {"bind 127.0.0.1:0"});
    expect_throw_naming<std::logic_error>(
        [] { TcpStream::connect(SocketAddress::parse("127.0.0.1:9")); }, {"connect 127.0.0.1:9"});
    expect_throw_naming<std::logic_error>([] { UnixListener::bind("/tmp/fiberloop-no-loop.sock"); },
                                          {"bind /tmp/fiberloop-no-loop.sock"});
  });
  EXPECT_EQ(open_fds(), before);
  EXPECT_NE(::access("/tmp/fiberloop-no-loop.sock", F_OK), 0);  // nothing bound
}

bool blocked_here(int signo) {
  sigset_t now;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &now);
  return sigismember(&now, signo) == 1;
}

// Unblocks `signo` on the calling thread while it lives, so that a test can
// see whether a call blocked it; then puts the mask back as it was.
class UnblockedHere {
 public:
  explicit UnblockedHere(int signo) {
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signo);
    ::pthread_sigmask(SIG_UNBLOCK, &one, &before_);
  }
  ~UnblockedHere() { ::pthread_sigmask(SIG_SETMASK, &before_, nullptr); }

 private:
  sigset_t before_{};
};

// wait_signal refuses before it blocks anything or opens a signalfd.
TEST(NoLoop, WaitSignalBlocksNothingAndLeaksNoFd) {
  const auto before = open_fds();
  on_plain_thread([] {
    const UnblockedHere unblocked(SIGUSR2);
    expect_throw_naming<std::logic_error>([] { wait_signal({SIGUSR2}); },
                                          {"wait_signal", "no Loop"});
    EXPECT_FALSE(blocked_here(SIGUSR2));
  });
  EXPECT_EQ(open_fds(), before);
}

// A loop without workers runs, and refuses a job it could never run
// (before: the job waited for ever).
TEST(NoLoop, ZeroBlockingThreadsRefusesTheJob) {
  on_plain_thread([] {
    Loop loop({.blocking_threads = 0});
    loop.run_until_complete([] {
      expect_throw_naming<std::logic_error>([] { run_blocking([] { return 1; }); },
                                            {"run_blocking", "blocking_threads is 0"});
      expect_throw_naming<std::logic_error>([] { resolve("localhost", 80); },
                                            {"blocking_threads is 0"});
    });
  });
}

TEST(NoLoop, SleepNamesItself) {
  on_plain_thread([] {
    expect_throw_naming<std::logic_error>([] { this_fiber::sleep_for(1ms); },
                                          {"this_fiber::sleep_for", "no Loop"});
    expect_throw_naming<std::logic_error>([] { this_fiber::sleep_until(Clock::now()); },
                                          {"this_fiber::sleep_until", "no Loop"});
  });
}

using Misuse = LoopTest;

TEST_F(Misuse, SleepOutsideAFiberNamesItself) {
  expect_throw_naming<std::logic_error>([] { this_fiber::sleep_for(1ms); },
                                        {"this_fiber::sleep_for", "outside a fiber"});
  expect_throw_naming<std::logic_error>([] { this_fiber::sleep_until(Clock::now()); },
                                        {"this_fiber::sleep_until", "outside a fiber"});
}

TEST_F(Misuse, CallLaterFromAnotherThreadNamesItself) {
  on_plain_thread([&] {
    expect_throw_naming<std::logic_error>([&] { loop().call_later(1ms, [] {}); },
                                          {"Loop::call_later"});
  });
}

TEST_F(Misuse, WaitSignalRefusesWhatIsNotACatchableSignal) {
  const UnblockedHere unblocked(SIGUSR2);
  // On the loop's thread outside a fiber (a callback): refused alike.
  expect_throw_naming<std::logic_error>([] { wait_signal({SIGUSR2}); },
                                        {"wait_signal", "outside a fiber"});
  EXPECT_FALSE(blocked_here(SIGUSR2));
  run([] {
    expect_throw_naming<std::invalid_argument>([] { wait_signal({}); }, {"no signals"});
    expect_throw_naming<std::invalid_argument>(
        [] {
          wait_signal({SIGUSR2, SIGKILL});
        },
        {"wait_signal: 9 "});
    expect_throw_naming<std::invalid_argument>([] { wait_signal({SIGSTOP}); }, {"19"});
    expect_throw_naming<std::invalid_argument>([] { wait_signal({1000}); }, {"1000"});
    // fiberloop's own: a fault (blocked, an overflow would end the process
    // unreported) and the stall detector's signal.
    expect_throw_naming<std::invalid_argument>(
        [] {
          wait_signal({SIGUSR2, SIGSEGV});
        },
        {"11 (SEGV)", "fiberloop's"});
    expect_throw_naming<std::invalid_argument>([] { wait_signal({SIGURG}); }, {"stall detector"});
    EXPECT_FALSE(blocked_here(SIGUSR2));  // refused before anything was blocked
  });
}

TEST_F(Misuse, ProcessWaitOutsideAFiberNamesItself) {
  std::optional<Process> child;
  run([&] { child.emplace(Process::exec({"sleep", "10"})); });
  expect_throw_naming<std::logic_error>([&] { child->wait(); },
                                        {"Process::wait", "outside a fiber"});
  run([&] {
    child->kill();
    EXPECT_EQ(child->wait(), -SIGKILL);
  });
}

// A Process must outlive the fibers waiting for its child: destroying it
// under one stops the process with a message naming the child (before: the
// fiber read the freed Process when the child exited).
TEST(ProcessMisuse, DestroyedUnderAWaitingFiberStopsWithTheChild) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(fiberloop::run([] {
                 // (cat ends when this process does: its stdin closes)
                 auto child =
                     std::make_unique<Process>(Process::exec({"cat"}, {.in = Stdio::pipe}));
                 auto waiter = spawn([&] { child->wait(); });
                 this_fiber::yield();  // parked in wait()
                 child.reset();
               }),
               "still parked in wait\\(\\) or communicate\\(\\) for pid [0-9]+ \\(cat\\)");
}

// The same for communicate(), whose helper fibers (feeding stdin, draining
// stderr) and caller use the Process until it returns (before: the Process
// was freed under them, and the feeder closed a freed pipe).
TEST(ProcessMisuse, DestroyedUnderACommunicatingFiberStopsWithTheChild) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(fiberloop::run([] {
                 // sleep reads no stdin: the feeder and the reader of stdout park
                 auto child = std::make_unique<Process>(
                     Process::exec({"sleep", "2"}, {.in = Stdio::pipe, .out = Stdio::pipe}));
                 auto talker = spawn([&] { (void)child->communicate(std::string(8 << 20, 'x')); });
                 this_fiber::sleep_for(std::chrono::milliseconds(50));
                 child.reset();
               }),
               "still parked in wait\\(\\) or communicate\\(\\) for pid [0-9]+ \\(sleep\\)");
}

// A stream read outside a fiber: a deadline that has passed fails it first
// (as in a fiber), naming the stream; otherwise the read says why it cannot
// wait, not the deadline.
TEST_F(Misuse, StreamDeadlineOutsideAFiber) {
  std::optional<TcpStream> client;
  std::optional<TcpStream> server;
  run([&] {
    auto listener = TcpListener::bind(testing::any_port());
    client.emplace(TcpStream::connect(listener.local_address()));
    server.emplace(listener.accept());
  });
  char c;
  client->set_read_deadline(Clock::now() - 1ms);
  expect_throw_naming<TimeoutError>([&] { client->read({&c, 1}); }, {"read deadline", "fd "});
  client->set_read_deadline(Clock::now() + 1h);
  try {
    client->read({&c, 1});
    ADD_FAILURE() << "a read with nothing to read returned outside a fiber";
  } catch (const std::logic_error& e) {
    EXPECT_EQ(std::string(e.what()).find("deadline"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("read"), std::string::npos) << e.what();
  }
  client.reset();
  server.reset();
}

// The fd checks, on each backend: epoll refuses regular files itself, and
// an io_uring poll would report one ready at once; both must refuse alike.
class EachBackend : public LoopTest, public ::testing::WithParamInterface<Backend> {
 public:
  EachBackend() : LoopTest(LoopOptions{.backend = GetParam()}) {}
};

// The directory for this test's files: Bazel's, else /tmp.
std::string test_dir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

// A regular file (this test's own temporary one), open for reading.
struct RegularFile {
  RegularFile() {
    std::string path = test_dir() + "/fiberloop-misuse-XXXXXX";
    fd = ::mkstemp(path.data());
    ::unlink(path.c_str());
  }
  ~RegularFile() { ::close(fd); }
  int fd;
};

// What the kernel cannot poll: a regular file, /dev/null.
TEST_P(EachBackend, WaitingOnWhatCannotBePolledIsRefused) {
  RegularFile file;
  const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  for (const int fd : {file.fd, null}) {
    ASSERT_GE(fd, 0);
    const std::string named = "fd " + std::to_string(fd);
    run([&] {
      try {
        wait_readable(fd);
        ADD_FAILURE() << "wait_readable on " << named << " returned";
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EPERM);
        EXPECT_NE(std::string(e.what()).find("wait_readable " + named), std::string::npos)
            << e.what();
      }
    });
    try {
      loop().add_reader(fd, [] {});
      ADD_FAILURE() << "add_reader on " << named << " returned";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EPERM);
      EXPECT_NE(std::string(e.what()).find("Loop::add_reader " + named), std::string::npos)
          << e.what();
    }
    EXPECT_FALSE(loop().remove_reader(fd));
  }
  ::close(null);
}

TEST_P(EachBackend, WaitingOnAnFdNotOpenIsEBADF) {
  const int closed = 1 << 29;  // far past any fd this process opens
  run([&] {
    try {
      wait_writable(closed);
      ADD_FAILURE() << "wait_writable on an fd not open returned";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
      EXPECT_NE(std::string(e.what()).find("wait_writable fd " + std::to_string(closed)),
                std::string::npos)
          << e.what();
    }
  });
  try {
    loop().add_writer(closed, [] {});
    ADD_FAILURE() << "add_writer on an fd not open returned";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EBADF);
    EXPECT_NE(std::string(e.what()).find("Loop::add_writer fd"), std::string::npos) << e.what();
  }
}

// File offsets past 2^63 - 1 are refused on both backends (an io_uring
// write at 2^64 - 1 used the fd's position: it overwrote the file's start).
TEST_P(EachBackend, FileOffsetsPastTheLargestAreRefused) {
  const std::string path = test_dir() + "/fiberloop-offsets-" + std::to_string(::getpid());
  run([&] {
    File f = File::open(path, O_RDWR | O_CREAT | O_TRUNC);
    char buf[4];
    for (const std::uint64_t offset : {~std::uint64_t{0}, std::uint64_t{1} << 63}) {
      expect_throw_naming<std::system_error>([&] { f.write_at("x", offset); },
                                             {"write_at", "largest file offset"});
      expect_throw_naming<std::system_error>(
          [&] {
            f.read_at({buf, 4}, offset);
          },
          {"read_at", "largest file offset"});
    }
    // The last offset there is: nothing to read from it, no byte fits at it.
    constexpr std::uint64_t kLast = (std::uint64_t{1} << 63) - 1;
    EXPECT_EQ(f.read_at({buf, 0}, kLast), 0u);
    expect_throw_naming<std::system_error>([&] { f.write_at("x", kLast); },
                                           {"largest file offset"});
    EXPECT_EQ(f.size(), 0u);  // nothing was written anywhere
  });
  ::unlink(path.c_str());
}

// add_reader on the fd of a fiberloop socket: the loop waits on it already.
TEST_P(EachBackend, AddReaderOnAFiberloopSocketSaysSo) {
  run([&] {
    auto listener = TcpListener::bind(testing::any_port());
    try {
      loop().add_reader(listener.fd(), [] {});
      ADD_FAILURE() << "add_reader on a listener's fd returned";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EEXIST);
      EXPECT_NE(std::string(e.what()).find("wait on the socket itself"), std::string::npos)
          << e.what();
    }
    EXPECT_FALSE(loop().remove_reader(listener.fd()));
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, EachBackend,
                         ::testing::Values(Backend::epoll, Backend::io_uring),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// Text that becomes a C string (a path, an argument, a host) with a NUL
// byte inside is refused, naming the call (it was cut short: another file
// was read, another program run).
TEST_F(Misuse, ANulByteInAPathArgumentOrHostIsRefused) {
  run([] {
    using namespace std::string_literals;
    const std::string nul = "/etc/hostname\0.txt"s;
    const auto refused = [](auto call, const char* what, const char* where = "offset 13") {
      try {
        call();
        ADD_FAILURE() << what << " accepted a NUL byte";
      } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(std::string("a NUL byte at ") + where),
                  std::string::npos)
            << e.what();
      }
    };
    refused([&] { (void)read_file(nul); }, "read_file path");
    refused([&] { write_file(nul, "x"); }, "write_file path");
    refused([&] { (void)File::open(nul, O_RDONLY); }, "File::open path");
    refused([&] { (void)Process::exec({"/bin/echo", nul}); }, "Process::exec argv");
    refused([&] { (void)Process::exec({"/bin/true"}, {.cwd = nul}); }, "Process::exec cwd");
    refused([&] { (void)Process::exec({"/bin/true"}, {.env = std::vector{nul}}); },
            "Process::exec env");
    refused([&] { (void)resolve("localhost\0.example"s, 80); }, "resolve host", "offset 9");
#ifndef FIBERLOOP_NO_TLS
    auto listener = TcpListener::bind(SocketAddress::parse("127.0.0.1:0"));
    TlsContext unverified = TlsContext::client();
    unverified.set_verify_peer(false);  // the name went out as SNI, cut short
    refused(
        [&] {
          (void)TlsStream::client(TcpStream::connect(listener.local_address()), unverified,
                                  "localhost\0.example"s);
        },
        "TlsStream::client host", "offset 9");
#endif
  });
}

}  // namespace
}  // namespace fiberloop
