// A loop's and a group's lifetime against their own frames: destroying one
// on the wrong thread, or from its own fiber, callback or run_blocking job,
// stops the process with a message (a destructor that went on would free
// what those frames return into, and a throw would not keep a `delete`d
// object alive); and a run() that ends by an exception leaves the loop not
// running.
#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <system_error>
#include <thread>

#include "fiberloop.h"
#include "tests/group_helpers.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::unpinned;

TEST(LoopLifetimeDeathTest, ALoopDestroyedOnAnotherThreadSaysSo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        std::unique_ptr<Loop> loop;
        std::thread([&] { loop = std::make_unique<Loop>(); }).join();
        loop.reset();
      },
      "a Loop was destroyed on a thread that is not its own");
}

TEST(LoopLifetimeDeathTest, ALoopDestroyedFromItsOwnCallbackSaysSo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto loop = std::make_unique<Loop>();
        loop->call_soon([&loop] { loop.reset(); });
        loop->run();
      },
      "a Loop was destroyed from inside one of its own callbacks or posts");
}

TEST(LoopLifetimeDeathTest, ALoopDestroyedFromItsOwnFiberSaysSo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto loop = std::make_unique<Loop>();
        loop->spawn([&loop] { loop.reset(); }).detach();
        loop->run();
      },
      "a Loop was destroyed from inside one of its own fibers");
}

// Closes this process's epoll instances (the loop's: a user's stray close).
void close_epoll_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) std::_Exit(5);
  while (const dirent* e = ::readdir(dir)) {
    char target[64] = {};
    const std::string link = std::string("/proc/self/fd/") + e->d_name;
    if (::readlink(link.c_str(), target, sizeof target - 1) > 0 &&
        std::string(target) == "anon_inode:[eventpoll]") {
      ::close(std::atoi(e->d_name));
    }
  }
  ::closedir(dir);
}

// The poller fails under run() (its epoll fd closed by someone else): run()
// throws the poller's error, and the loop is left not running, so that the
// next run() runs (its timer due, it needs no poll) instead of throwing
// "already running" (and ~Loop would close it instead of stopping the
// process as if destroyed from a callback).
void run_a_loop_whose_poller_fails() {
  Loop loop(LoopOptions{.backend = Backend::epoll});
  bool finished = false;
  loop.spawn([&] {
    close_epoll_fds();
    this_fiber::sleep_for(100ms);  // the loop polls for it, and fails
    finished = true;
  });
  try {
    loop.run();
    std::_Exit(2);
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "%s\n", e.what());  // epoll_wait: Bad file descriptor
  }
  std::this_thread::sleep_for(200ms);  // the timer is due: no poll needed
  try {
    loop.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::_Exit(3);
  }
  std::_Exit(finished ? 0 : 4);  // (the loop cannot close without its poller)
}

TEST(LoopLifetimeDeathTest, ARunThatThrewLeavesTheLoopNotRunning) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(run_a_loop_whose_poller_fails(), ::testing::ExitedWithCode(0), "epoll_wait");
}

TEST(GroupLifetimeDeathTest, DestroyingTheGroupFromItsOwnFiberSaysSo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto* group = new LoopGroup(unpinned(2));
        group->run([group] { delete group; });
      },
      "~LoopGroup: called on one of the group's own loop threads");
}

// From a run_blocking job of one of its loops: the loop's close would wait
// for the job, which waits for the close.
TEST(GroupLifetimeDeathTest, DestroyingTheGroupFromOneOfItsRunBlockingJobsSaysSo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto* group = new LoopGroup(unpinned(2));
        group->run([group] { run_blocking([group] { delete group; }); });
      },
      "~LoopGroup: called in a run_blocking job of one of the group's loops");
}

}  // namespace
}  // namespace fiberloop
