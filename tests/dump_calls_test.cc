// Loop::dump() names the call a fiber waits in on an fd, on both backends
// (and a TimeoutError what its fiber waited on):
// "reading fd 7 in accept", "writing fd 9 in connect", "reading fd 11 in
// wait_signal", and a second acceptor "waiting its turn on fd 7 in accept".
// The direction alone ("reading fd 7") left a user to guess whether the
// fiber was in accept, read, wait_signal or Process::wait. A wait on a
// sync primitive names the primitive by its address.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::any_port;

class DumpCalls : public testing::LoopTest, public ::testing::WithParamInterface<Backend> {
 protected:
  DumpCalls() : LoopTest(LoopOptions{.backend = GetParam()}) {}
};

// The first line of this loop's dump that contains every one of `parts`,
// once some fiber shows it (10 s at most); "" if none does by then.
std::string await_line(const std::vector<std::string>& parts) {
  for (int i = 0; i < 10'000; ++i) {
    std::ostringstream dump;
    Loop::current()->dump(dump);
    std::istringstream lines(dump.str());
    for (std::string line; std::getline(lines, line);) {
      bool all = true;
      for (const std::string& part : parts) all = all && line.find(part) != std::string::npos;
      if (all) return line;
    }
    this_fiber::sleep_for(1ms);
  }
  return "";
}

TEST_P(DumpCalls, NamesTheCallEachFdWaitIsIn) {
  run([] {
    std::vector<Task<void>> waiters;
    // Two acceptors: one in accept, the other waiting for its turn.
    auto listener = TcpListener::bind(any_port());
    const std::string listener_fd = std::to_string(listener.fd());
    for (int i = 0; i < 2; ++i) waiters.push_back(spawn([&] { (void)listener.accept(); }));
    // A reader of a connection, and a writer to one whose peer never reads.
    auto pairs = TcpListener::bind(any_port());
    auto client = TcpStream::connect(pairs.local_address());
    auto server = pairs.accept();
    auto quiet = TcpStream::connect(pairs.local_address());
    auto quiet_server = pairs.accept();
    waiters.push_back(spawn([&] {
      char buf[16];
      (void)client.read(buf);
    }));
    waiters.push_back(spawn([&] { quiet.write_all(std::string(64 << 20, 'x')); }));
    // A connect that cannot finish, a signal, a child, a pipe.
    std::vector<TcpStream> queued;
    const auto [full_fd, full_address] = testing::listener_with_full_backlog(queued);
    waiters.push_back(spawn([&, to = full_address] { (void)TcpStream::connect(to); }));
    waiters.push_back(spawn([] { (void)wait_signal({SIGUSR2}); }));
    auto child = Process::exec({"sleep", "60"});
    waiters.push_back(spawn([&] { (void)child.wait(); }));
    int pipe_fds[2];
    ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
    waiters.push_back(spawn([&] { wait_readable(pipe_fds[0]); }));

    EXPECT_NE(await_line({": reading fd " + listener_fd + " in accept"}), "");
    EXPECT_NE(await_line({": waiting its turn on fd " + listener_fd + " in accept"}), "");
    EXPECT_NE(await_line({": reading fd " + std::to_string(client.fd()) + " in read"}), "");
    EXPECT_NE(await_line({": writing fd " + std::to_string(quiet.fd()) + " in write"}), "");
    EXPECT_NE(await_line({": writing fd ", " in connect"}), "");
    EXPECT_NE(await_line({": reading fd ", " in wait_signal"}), "");
    EXPECT_NE(await_line({": reading fd ", " in Process::wait"}), "");
    EXPECT_NE(await_line({": reading fd " + std::to_string(pipe_fds[0]) + " in wait_readable"}),
              "");

    for (auto& waiter : waiters) waiter.cancel();
    for (auto& waiter : waiters) EXPECT_THROW(waiter.join(), Cancelled);
    child.kill();
    EXPECT_EQ(child.wait(), -SIGKILL);
    ::close(full_fd);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
  });
}

// A read cancelled on io_uring parks again until the kernel answers the
// cancel: meanwhile the dump still shows its fd and call (it said "fd 0").
TEST_P(DumpCalls, ACancelledKernelReadStillShowsItsFdWhileTheKernelAnswers) {
  run([this] {
    auto listener = TcpListener::bind(any_port());
    auto client = TcpStream::connect(listener.local_address());
    auto server = listener.accept();
    SpawnOptions options;
    options.name = "reader";
    auto reader = spawn(options, [&] {
      char buf[16];
      (void)client.read(buf);
    });
    const std::string waiting = ": reading fd " + std::to_string(client.fd()) + " in read";
    ASSERT_NE(await_line({"'reader' parked", waiting}), "");
    reader.cancel();
    this_fiber::yield();  // the reader runs, asks the kernel to cancel, parks again
    std::ostringstream dump;
    Loop::current()->dump(dump);
    if (GetParam() == Backend::io_uring) {
      EXPECT_NE(dump.str().find(waiting), std::string::npos) << dump.str();
    } else {
      EXPECT_EQ(dump.str().find("'reader' parked"), std::string::npos) << dump.str();
    }
    EXPECT_THROW(reader.join(), Cancelled);
  });
}

// A with_timeout that fires while its fiber is parked says on what: the
// message named only the scope ("with_timeout: 20 ms elapsed (the timeout
// set at ...)"), not whether the fiber was reading, connecting or joining.
TEST_P(DumpCalls, ATimeoutSaysWhatTheFiberWaitedFor) {
  run([] {
    auto listener = TcpListener::bind(any_port());
    auto client = TcpStream::connect(listener.local_address());
    auto server = listener.accept();
    std::string what;
    try {
      with_timeout(20ms, [&] {
        char buf[16];
        (void)client.read(buf);
      });
    } catch (const TimeoutError& e) {
      what = e.what();
    }
    EXPECT_NE(what.find("with_timeout: 20 ms elapsed (the timeout set at "), std::string::npos)
        << what;
    EXPECT_NE(what.find(") while reading fd " + std::to_string(client.fd()) + " in read"),
              std::string::npos)
        << what;
    auto sleeper = spawn([] { this_fiber::sleep_for(10s); });
    try {
      with_timeout(20ms, [&] { sleeper.join(); });
    } catch (const TimeoutError& e) {
      what = e.what();
    }
    EXPECT_NE(what.find(") while joining fiber " + std::to_string(sleeper.id())), std::string::npos)
        << what;
    sleeper.cancel();
    EXPECT_THROW(sleeper.join(), Cancelled);
  });
}

// A wait on a sync primitive names the primitive: the fibers waiting on the
// same Mutex show the same address, another primitive another ("waiting on
// a Mutex" alone did not say which fibers wait on which lock).
TEST_P(DumpCalls, SyncWaitsNameThePrimitive) {
  run([] {
    Mutex lock;
    Event never;
    lock.lock();
    auto a = spawn(SpawnOptions{.name = "locker-a"}, [&] { std::lock_guard hold(lock); });
    auto b = spawn(SpawnOptions{.name = "locker-b"}, [&] { std::lock_guard hold(lock); });
    auto c = spawn(SpawnOptions{.name = "event-waiter"}, [&] { never.wait(); });
    // A group's join is a join, not a primitive: no address read as a fiber.
    auto d = spawn(SpawnOptions{.name = "group-owner"}, [&] {
      TaskGroup g;
      g.spawn([&] { never.wait(); });
      g.join();
    });
    const auto address = [](const std::string& line, const std::string& after) {
      const std::size_t at = line.find(after);
      if (at == std::string::npos) return std::string("(none in: " + line + ")");
      const std::size_t start = at + after.size();
      return line.substr(start, line.find(' ', start) - start);
    };
    const std::string la = await_line({"'locker-a'", "waiting on a Mutex 0x"});
    const std::string lb = await_line({"'locker-b'", "waiting on a Mutex 0x"});
    const std::string lc = await_line({"'event-waiter'", "waiting on an Event 0x"});
    EXPECT_EQ(address(la, "Mutex "), address(lb, "Mutex ")) << la << "\n" << lb;
    EXPECT_NE(address(la, "Mutex "), address(lc, "Event ")) << la << "\n" << lc;
    const std::string ld = await_line({"'group-owner'", "joining"});
    EXPECT_NE(ld.find("joining fibers"), std::string::npos) << ld;
    lock.unlock();
    a.join();
    b.join();
    c.cancel();
    EXPECT_THROW(c.join(), Cancelled);
    d.cancel();
    EXPECT_THROW(d.join(), Cancelled);
  });
}

INSTANTIATE_TEST_SUITE_P(Backends, DumpCalls, ::testing::Values(Backend::epoll, Backend::io_uring),
                         [](const auto& info) { return std::string(to_string(info.param)); });

}  // namespace
}  // namespace fiberloop
