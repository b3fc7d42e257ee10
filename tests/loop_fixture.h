// The shared fixture: a Loop per test, and after the test, proof that nothing
// was left behind: no live fiber, no pending timer, no fd registered with the
// loop, no fd open that was not open before, no stack outstanding.
#pragma once

#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/socket.h>

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fiber/internal/stack_pool.h"
#include "fiberloop.h"
#include "io/internal/reaper.h"
#include "loop/internal/scheduler.h"

namespace fiberloop::testing {

// How many fibers a scale test may keep alive at once. ThreadSanitizer keeps
// state per fiber and stops the process past 8128 threads and fibers
// together, and each new fiber costs it 8 to 15 ms (a thread context and its
// cleared state: 4000 fibers took 59 s on the CI machine and timed out a
// small test), so under it the scale tests run at a thousand. Under
// AddressSanitizer each fiber's first run costs shadow memory and a fake
// stack (about 0.9 ms here, most of it the kernel zeroing pages), so 100k
// fibers would take 90 s: they run at 20k.
constexpr int at_scale(int fibers) {
#if defined(__SANITIZE_THREAD__)
  return fibers < 1000 ? fibers : 1000;
#elif defined(__SANITIZE_ADDRESS__)
  return fibers < 20000 ? fibers : 20000;
#else
  return fibers;
#endif
}

// Parks the calling fiber with nothing that will wake it: only a cancel (or
// a with_timeout) ends the wait.
inline void park_forever() { internal::Scheduler::current()->park(); }

// An exception handler that appends each reported failure's what() to `out`,
// after "<fiber name>: " when `with_name`.
inline std::function<void(std::exception_ptr, const FiberInfo&)> collect_whats(
    std::vector<std::string>& out, bool with_name = false) {
  return [&out, with_name](std::exception_ptr e, const FiberInfo& info) {
    std::string what = "(not a std::exception)";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      what = ex.what();
    } catch (...) {
    }
    out.push_back(with_name ? info.name + ": " + what : what);
  };
}

// What a failed call threw, as text.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

// 127.0.0.1 with port 0: bind picks a free port (local_address() says which).
inline SocketAddress any_port() { return SocketAddress::parse("127.0.0.1:0"); }

// A listener on loopback that never accepts, its backlog (of one) full,
// so that a connect to it waits: the kernel drops further handshakes. The
// connections that filled it go to `queued`. From a fiber. Returns {its fd,
// for the caller to close; its address}.
inline std::pair<int, SocketAddress> listener_with_full_backlog(std::vector<TcpStream>& queued) {
  using namespace std::chrono_literals;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  SocketAddress addr = any_port();
  EXPECT_EQ(::bind(fd, addr.get(), addr.size()), 0);
  EXPECT_EQ(::listen(fd, 0), 0);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len), 0);
  addr = SocketAddress(reinterpret_cast<sockaddr*>(&bound), len);
  for (int i = 0; i < 8; ++i) {
    try {
      queued.push_back(with_timeout(200ms, [&] { return TcpStream::connect(addr); }));
    } catch (const TimeoutError&) {
      return {fd, addr};
    }
  }
  ADD_FAILURE() << "every connect finished: the backlog never filled";
  return {fd, addr};
}

// The fds this process has open now (/proc/self/fd), the directory's own
// excluded.
inline std::vector<int> open_fds() {
  std::vector<int> fds;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return fds;
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] != '.' && std::atoi(e->d_name) != ::dirfd(dir))
      fds.push_back(std::atoi(e->d_name));
  }
  ::closedir(dir);
  return fds;
}

class LoopTest : public ::testing::Test {
 protected:
  LoopTest() : LoopTest(LoopOptions{}) {}
  explicit LoopTest(LoopOptions options) : loop_(std::make_unique<Loop>(std::move(options))) {
    (void)internal::children_awaiting_reaper();  // the process-wide reaper holds an fd for good
    fds_before_ = open_fds();
  }

  // Runs `fn` in a fiber until it finishes, then the loop until it is idle.
  template <class F>
  auto run(F&& fn) {
    return loop_->run_until_complete(std::forward<F>(fn));
  }

  Loop& loop() { return *loop_; }

  void TearDown() override {
    loop_->run();
    const LoopStats s = loop_->stats();
    EXPECT_EQ(s.fibers_alive, 0u) << "a test left a fiber alive";
    EXPECT_EQ(s.timers_pending, 0u) << "a test left a timer pending";
    EXPECT_EQ(s.fds_registered, 0u) << "a test left an fd registered with the loop";
    EXPECT_EQ(open_fds(), fds_before_) << "a test left an fd open";
    loop_.reset();
    EXPECT_EQ(internal::StackPool::this_thread().stats().outstanding, 0u)
        << "a test left a stack outstanding";
  }

 private:
  std::unique_ptr<Loop> loop_;
  std::vector<int> fds_before_;
};

}  // namespace fiberloop::testing
