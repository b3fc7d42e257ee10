// Process at the edges of the process itself: the last fds (the child's
// pidfd must never be the fd that is missing once the child runs) and a
// fork()'s child, which reaps the children it drops though the parent's
// reaper thread did not come with it. Each runs in a child process of its own.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "fiberloop.h"
#include "io/internal/reaper.h"

// The fork test starts the child's reaper thread after a fork of a process
// with threads, which ThreadSanitizer refuses by default (it cannot see the
// parent's threads' locks; the reaper takes only its own, made afresh).
extern "C" const char* __tsan_default_options() { return "die_after_fork=0"; }

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

// Lowers this (child) process's fd limit to 64 and fills it, leaving `spare`
// fds free. Returns the fillers.
std::vector<int> leave_fds_free(int spare) {
  rlimit limit{64, 64};
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) std::_Exit(2);
  std::vector<int> filler;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY)) >= 0;) filler.push_back(fd);
  for (int i = 0; i < spare; ++i) {
    ::close(filler.back());
    filler.pop_back();
  }
  return filler;
}

// Runs `exec`, which must fail with EMFILE before any child starts (said so
// in the message, which must also hold `needle`). Exits 0 if so.
template <class F>
void expect_emfile_and_no_child(const std::vector<int>& filler, F exec, const char* needle) {
  try {
    exec();
  } catch (const std::system_error& e) {
    // Fds back first: a sanitizer's checks of the exception may need one.
    for (const int fd : filler) ::close(fd);
    const std::string what = e.what();
    std::fprintf(stderr, "%s\n", what.c_str());
    std::_Exit(e.code().value() == EMFILE &&
                       what.find("no child was started") != std::string::npos &&
                       what.find(needle) != std::string::npos
                   ? 0
                   : 3);
  }
  std::_Exit(4);
}

// With no fd left for the child's pidfd, exec fails before any child starts
// (EMFILE, said so), instead of starting the child and killing it.
void exec_with_no_fd_left() {
  const std::vector<int> filler = leave_fds_free(0);
  expect_emfile_and_no_child(
      filler, [] { Process::exec({"true"}); }, "pidfd_open");
}

TEST(ProcessCornersDeathTest, ExecWithNoFdLeftForItsPidfdStartsNoChild) {
  EXPECT_EXIT(exec_with_no_fd_left(), ::testing::ExitedWithCode(0), "pidfd_open");
}

// Two fds left: enough for a pipe's socketpair, or for the pidfd, not for
// both. The pidfd's fd is held from before the pipes are made, so the pipe
// is what fails, before the child starts (it took the pidfd's fd, and the
// child was started and then killed).
void exec_with_fds_for_the_pipe_only() {
  Loop loop;  // pipes are streams of a loop (its fds first)
  const std::vector<int> filler = leave_fds_free(2);
  expect_emfile_and_no_child(
      filler, [] { Process::exec({"true"}, {.out = Stdio::pipe}); }, "socketpair");
}

TEST(ProcessCornersDeathTest, PipesCannotTakeTheFdThePidfdNeeds) {
  EXPECT_EXIT(exec_with_fds_for_the_pipe_only(), ::testing::ExitedWithCode(0), "socketpair");
}

// Whether `pid` is gone (reaped), waiting generously: its /proc entry.
bool reaped_soon(int pid) {
  const std::string stat = "/proc/" + std::to_string(pid) + "/stat";
  for (int i = 0; i < 500; ++i) {
    if (::access(stat.c_str(), F_OK) != 0) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// A pre-forking server's worker drops a Process while its child runs: the
// worker's reaper (not the parent's, whose thread is not in the worker)
// reaps it.
TEST(ProcessCorners, AForksChildReapsTheChildrenItDrops) {
  // The parent's reaper, its thread seen at work (idle in its poll when the
  // fork comes, as a pre-forking server's is; a sanitizer's runtime may not
  // survive a fork in the middle of a thread's start).
  int parents = -1;
  fiberloop::run([&] {
    auto p = Process::exec({"sh", "-c", "sleep 0.3"});  // running when dropped
    parents = p.pid();
  });
  ASSERT_TRUE(reaped_soon(parents));
  for (int i = 0; i < 500 && internal::children_awaiting_reaper() != 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(internal::children_awaiting_reaper(), 0);
  const pid_t worker = ::fork();
  ASSERT_GE(worker, 0);
  if (worker == 0) {
    int code = 1;
    try {
      int dropped = -1;
      fiberloop::run([&] {
        auto p = Process::exec({"sh", "-c", "sleep 0.2"});
        dropped = p.pid();
      });  // still running: handed to the reaper
      code = reaped_soon(dropped) ? 0 : 3;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      code = 2;
    }
    std::_Exit(code);
  }
  int status = 0;
  pid_t waited = 0;
  for (int i = 0; i < 2000 && (waited = ::waitpid(worker, &status, WNOHANG)) == 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  if (waited == 0) {  // hung: say so rather than time the test out
    ::kill(worker, SIGKILL);
    ::waitpid(worker, &status, 0);
    FAIL() << "the worker hung";
  }
  ASSERT_EQ(waited, worker);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: the dropped child was left a zombie in the worker";
}

// communicate() after the caller closed a pipe leaves that pipe out, as
// Python's does (it threw "the socket is closed" from the closed stdout):
// stdout gives "", stderr is still read, and the child still ends. Input
// for a stdin closed already is a logic_error naming the pid.
TEST(ProcessCorners, CommunicateLeavesOutPipesClosedAlready) {
  fiberloop::run([] {
    auto p = Process::exec({"sh", "-c", "echo err >&2; echo out"},
                           {.in = Stdio::pipe, .out = Stdio::pipe, .err = Stdio::pipe});
    p.stdout_pipe().close();
    auto [out, err] = p.communicate();
    EXPECT_EQ(out, "");
    EXPECT_EQ(err, "err\n");
    EXPECT_TRUE(p.returncode().has_value());

    auto q = Process::exec({"cat"}, {.in = Stdio::pipe, .out = Stdio::pipe});
    q.stdin_pipe().close();
    try {
      (void)q.communicate("lost");
      ADD_FAILURE() << "no error";
    } catch (const std::logic_error& e) {
      EXPECT_NE(std::string(e.what()).find("stdin pipe was closed already"), std::string::npos)
          << e.what();
    }
    EXPECT_EQ(q.communicate().first, "");  // cat saw the end of its input
    EXPECT_EQ(q.returncode(), 0);
  });
}

// A pipe that another fiber closes while communicate() reads or feeds it
// ends that stream, as one closed before the call does, and communicate()
// still waits for the child (it threw "the socket is closed" from the
// helper's read or write, and left the child unwaited).
TEST(ProcessCorners, APipeClosedDuringCommunicateEndsThatStream) {
  fiberloop::run([] {
    auto p = Process::exec({"sh", "-c", "echo err >&2; exec sleep 0.2"},
                           {.out = Stdio::pipe, .err = Stdio::pipe});
    // Runs once communicate() parks reading stdout, which the child never writes.
    auto closer = spawn([&] { p.stdout_pipe().close(); });
    auto [out, err] = with_timeout(10s, [&] { return p.communicate(); });
    EXPECT_EQ(out, "");
    EXPECT_EQ(err, "err\n");
    EXPECT_EQ(p.returncode(), 0);
    closer.join();

    // stdin closed while the feeding waits for room: a child that reads
    // only later sees the end of what it was given.
    auto q = Process::exec({"sh", "-c", "sleep 0.1; exec wc -c"},
                           {.in = Stdio::pipe, .out = Stdio::pipe});
    const std::string input(4 << 20, 'i');  // far more than a pipe holds
    auto stdin_closer = spawn([&] {
      this_fiber::yield();  // after the feeding fiber has filled the pipe and parked
      q.stdin_pipe().close();
    });
    auto [counted, nothing] = with_timeout(10s, [&] { return q.communicate(input); });
    EXPECT_LT(std::stoul(counted), input.size());
    EXPECT_EQ(nothing, "");
    EXPECT_EQ(q.returncode(), 0);
    stdin_closer.join();
  });
}

}  // namespace
}  // namespace fiberloop
