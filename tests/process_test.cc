// Process with real children: pipes as Streams, communicate() that cannot
// deadlock, exit statuses and signals, the errors a user can cause, and no
// zombie left behind however a Process ends.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "fiberloop.h"
#include "io/internal/reaper.h"
#include "tests/loop_fixture.h"
#include "tests/temp_dir.h"
#include "tests/thread_probe.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using Processes = testing::LoopTest;

// Whether `pid` is a zombie or gone (reaped): its /proc state.
char proc_state(int pid) {
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (f == nullptr) return 'X';  // gone
  int p;
  char comm[256], state = '?';
  if (std::fscanf(f, "%d %255s %c", &p, comm, &state) != 3) state = '?';
  std::fclose(f);
  return state;
}

// Waits (generously) for `pid` to be reaped.
bool reaped_soon(int pid) {
  for (int i = 0; i < 500; ++i) {
    if (proc_state(pid) == 'X') return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

TEST_F(Processes, CommunicateFeedsStdinAndCollectsBothOutputs) {
  run([] {
    auto p = Process::exec({"sh", "-c", "tr a-z A-Z; echo oops >&2; exit 3"},
                           {.in = Stdio::pipe, .out = Stdio::pipe, .err = Stdio::pipe});
    auto [out, err] = p.communicate("hello\nworld\n");
    EXPECT_EQ(out, "HELLO\nWORLD\n");
    EXPECT_EQ(err, "oops\n");
    EXPECT_EQ(p.returncode(), 3);
    EXPECT_EQ(p.wait(), 3);  // again: the same
  });
}

// A parent whose own standard streams are closed (a daemon's) gets 0, 1
// and 2 for the pipes it makes: each still reaches its stream in the child,
// and a null stream placed first does not overwrite one of them. Each
// combination of the three streams, in and out of the way.
TEST_F(Processes, PipesReachTheChildWhenTheParentsStandardStreamsAreClosed) {
  struct StandardStreamsClosed {  // restored however the test ends
    int saved[3];
    StandardStreamsClosed() {
      for (int i = 0; i < 3; ++i) saved[i] = ::fcntl(i, F_DUPFD_CLOEXEC, 10);
      for (int i = 0; i < 3; ++i) ::close(i);
    }
    ~StandardStreamsClosed() {
      for (int i = 0; i < 3; ++i) {
        ::dup2(saved[i], i);
        ::close(saved[i]);
      }
    }
  };
  struct Case {
    Stdio in, out, err;
  };
  const Case cases[] = {{Stdio::inherit, Stdio::null, Stdio::pipe},
                        {Stdio::pipe, Stdio::pipe, Stdio::pipe},
                        {Stdio::null, Stdio::pipe, Stdio::null},
                        {Stdio::pipe, Stdio::null, Stdio::pipe}};
  for (const Case& c : cases) {
    std::pair<std::string, std::string> got;
    int status = -1;
    {
      StandardStreamsClosed closed;
      run([&] {
        auto p = Process::exec({"sh", "-c", "cat 2>/dev/null; echo out; echo err >&2"},
                               {.in = c.in, .out = c.out, .err = c.err});
        got = p.communicate(c.in == Stdio::pipe ? "in\n" : "");
        status = p.wait();
      });
    }
    const std::string fed = c.in == Stdio::pipe ? "in\n" : "";
    EXPECT_EQ(got.first, c.out == Stdio::pipe ? fed + "out\n" : "");
    EXPECT_EQ(got.second, c.err == Stdio::pipe ? "err\n" : "");
    EXPECT_EQ(status, 0);
  }
}

// communicate() from a fiber with a small stack, both pipes drained: its
// read buffers are not on the stack (a 64 KiB one overflowed it).
TEST_F(Processes, CommunicateWorksOnASmallStack) {
  run([] {
    SpawnOptions small;
    small.stack = StackOptions{.size = 64 * 1024};
    auto t = spawn(small, [] {
      auto p = Process::exec({"sh", "-c", "echo out; echo err >&2"},
                             {.out = Stdio::pipe, .err = Stdio::pipe});
      return p.communicate();
    });
    auto [out, err] = t.join();
    EXPECT_EQ(out, "out\n");
    EXPECT_EQ(err, "err\n");
  });
}

// 100 MiB on stderr while we read stdout: both pipes are drained at once.
TEST_F(Processes, AChildFillingOnePipeWhileWeReadAnotherDoesNotDeadlock) {
  run([] {
    auto p = Process::exec({"sh", "-c", "head -c 104857600 /dev/zero >&2; echo done"},
                           {.out = Stdio::pipe, .err = Stdio::pipe});
    auto [out, err] = p.communicate();
    EXPECT_EQ(out, "done\n");
    EXPECT_EQ(err.size(), std::size_t{100} << 20);
    EXPECT_EQ(p.returncode(), 0);
  });
}

TEST_F(Processes, PipesAreStreamsAndWorkWithTheLayers) {
  run([] {
    auto p = Process::exec({"cat"}, {.in = Stdio::pipe, .out = Stdio::pipe});
    Stream& in = p.stdin_pipe();
    BufferedReader out(p.stdout_pipe());
    in.write_all({"one\n", "two\n"});
    EXPECT_EQ(out.read_line(), "one");
    EXPECT_EQ(out.read_line(), "two");
    in.close();  // cat sees end of file
    EXPECT_EQ(out.read_line(), std::nullopt);
    EXPECT_EQ(p.wait(), 0);
    EXPECT_THROW(p.stderr_pipe(), std::logic_error);  // not a pipe
  });
}

TEST_F(Processes, AProgramThatDoesNotExistIsAnErrorNamingIt) {
  run([] {
    try {
      Process::exec({"fiberloop-no-such-program", "x"});
      ADD_FAILURE() << "no error";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ENOENT);
      EXPECT_NE(std::string(e.what()).find("exec fiberloop-no-such-program"), std::string::npos)
          << e.what();
    }
    try {
      Process::exec({"true"}, {.cwd = "/no/such/dir"});
      ADD_FAILURE() << "no error";
    } catch (const std::system_error& e) {
      EXPECT_NE(std::string(e.what()).find("/no/such/dir"), std::string::npos) << e.what();
    }
    EXPECT_THROW(Process::exec({}), std::invalid_argument);
    EXPECT_THROW(Process::exec({""}), std::invalid_argument);  // (was ENOENT, "exec : ...")
  });
}

TEST_F(Processes, ExitStatusesSignalsCwdAndEnv) {
  run([] {
    auto p = Process::exec(
        {"sh", "-c", "pwd; echo $FIBERLOOP_X"},
        {.out = Stdio::pipe, .cwd = "/", .env = std::vector<std::string>{"FIBERLOOP_X=42"}});
    EXPECT_EQ(p.communicate().first, "/\n42\n");
    auto sleeper = Process::exec({"sleep", "30"});
    EXPECT_FALSE(sleeper.returncode());
    sleeper.terminate();
    EXPECT_EQ(sleeper.wait(), -SIGTERM);
    sleeper.kill();  // waited for: does nothing
    auto killed = Process::exec({"sleep", "30"});
    killed.kill();
    EXPECT_EQ(killed.wait(), -SIGKILL);
    EXPECT_EQ(Process::exec({"true"}, {.in = Stdio::null, .out = Stdio::null}).wait(), 0);
  });
}

// A LoopGroup's threads block every signal; a child must not inherit that,
// or terminate() would do nothing.
TEST(ProcessesInAGroup, AChildOfAGroupLoopStartsWithNoSignalBlocked) {
  GroupOptions options;
  options.loops = 1;
  options.pin_threads = false;
  LoopGroup group(options);
  const int status = group.run([] {
    auto p = Process::exec({"sleep", "30"});
    this_fiber::sleep_for(20ms);
    p.terminate();
    return p.wait();
  });
  EXPECT_EQ(status, -SIGTERM);
}

TEST_F(Processes, ACancelledWaitLeavesTheChildRunning) {
  run([] {
    auto p = Process::exec({"sleep", "30"});
    EXPECT_THROW(with_timeout(20ms, [&] { p.wait(); }), TimeoutError);
    EXPECT_FALSE(p.returncode());
    EXPECT_NE(proc_state(p.pid()), 'X');
    EXPECT_NE(proc_state(p.pid()), 'Z');  // still running
    p.kill();
    EXPECT_EQ(p.wait(), -SIGKILL);
  });
}

TEST_F(Processes, ADroppedProcessIsReapedNotLeftAZombie) {
  int running_pid = -1, exited_pid = -1;
  run([&] {
    {
      auto p = Process::exec({"sh", "-c", "sleep 0.2"});
      running_pid = p.pid();
    }  // still running: handed to the reaper, not killed
    EXPECT_NE(testing::thread_named("fl-reaper"), 0) << "no thread named fl-reaper";
    {
      auto p = Process::exec({"true"});
      exited_pid = p.pid();
      // It has exited: a zombie until reaped.
      for (int i = 0; i < 10'000 && proc_state(exited_pid) != 'Z'; ++i) this_fiber::sleep_for(1ms);
      ASSERT_EQ(proc_state(exited_pid), 'Z');
    }
  });
  EXPECT_TRUE(reaped_soon(exited_pid)) << "state " << proc_state(exited_pid);
  EXPECT_TRUE(reaped_soon(running_pid)) << "state " << proc_state(running_pid);
  for (int i = 0; i < 500 && internal::children_awaiting_reaper() != 0; ++i) {
    std::this_thread::sleep_for(10ms);  // it reaps, then closes the pidfd and counts
  }
  EXPECT_EQ(internal::children_awaiting_reaper(), 0);
}

TEST_F(Processes, WritingToAChildThatClosedItsStdinThrowsEpipeNotSigpipe) {
  run([] {
    auto p = Process::exec({"sh", "-c", "exec 0<&-; sleep 0.05"}, {.in = Stdio::pipe});
    this_fiber::sleep_for(20ms);
    const std::string chunk(1 << 20, 'x');
    try {
      for (int i = 0; i < 64; ++i) p.stdin_pipe().write_all(chunk);
      ADD_FAILURE() << "wrote 64 MiB to nobody";
    } catch (const std::system_error& e) {
      EXPECT_TRUE(e.code().value() == EPIPE || e.code().value() == ECONNRESET) << e.what();
      EXPECT_NE(std::string(e.what()).find("stdin of pid " + std::to_string(p.pid()) + " (sh)"),
                std::string::npos)
          << e.what();
    }
    EXPECT_EQ(p.wait(), 0);
    p.stdin_pipe().close();  // closed pipes are named too
    try {
      p.stdin_pipe().write_all("x");
      ADD_FAILURE() << "wrote to a closed pipe";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
      EXPECT_NE(std::string(e.what()).find("stdin of pid " + std::to_string(p.pid()) + " (sh)"),
                std::string::npos)
          << e.what();
    }
  });
}

TEST_F(Processes, TwoFibersMayWaitForOneChild) {
  run([] {
    auto p = Process::exec({"sh", "-c", "sleep 0.05; exit 7"});
    auto other = spawn([&p] { return p.wait(); });
    EXPECT_EQ(p.wait(), 7);
    EXPECT_EQ(other.join(), 7);
  });
}

TEST_F(Processes, AMovedFromProcessIsEmpty) {
  run([] {
    auto p = Process::exec({"true"});
    EXPECT_EQ(p.wait(), 0);
    Process q = std::move(p);
    EXPECT_EQ(q.returncode(), 0);
    EXPECT_FALSE(p.returncode());
    EXPECT_EQ(p.pid(), -1);
    EXPECT_THROW(p.wait(), std::logic_error);
    Process empty;
    EXPECT_THROW(empty.wait(), std::logic_error);
    EXPECT_THROW(empty.kill(), std::logic_error);  // no child to signal, as wait() says
    EXPECT_THROW(p.terminate(), std::logic_error);
    q.kill();  // waited for already: nothing to do
  });
}

// Pipes need a loop: refused before any child exists, not after.
TEST(ProcessesOutsideALoop, APipeWithoutALoopIsRefusedBeforeTheChildStarts) {
  const std::string dir = testing::temp_dir("process");
  const std::string marker = dir + "/ran";
  EXPECT_THROW(Process::exec({"touch", marker}, {.out = Stdio::pipe}), std::logic_error);
  EXPECT_NE(::access(marker.c_str(), F_OK), 0) << "the child ran anyway";
  ::rmdir(dir.c_str());
}

// A communicate() cut short ends the fibers that fed stdin and drained
// stderr before it returns (the fixture checks no fiber is left alive).
TEST_F(Processes, ACommunicateCutShortEndsItsHelpers) {
  run([] {
    auto p =
        Process::exec({"sleep", "30"}, {.in = Stdio::pipe, .out = Stdio::pipe, .err = Stdio::pipe});
    EXPECT_THROW(with_timeout(20ms, [&] { (void)p.communicate(std::string(1 << 20, 'x')); }),
                 TimeoutError);
    // The feeder ended before communicate() left (its end closed stdin),
    // though the timeout was still pending while it was joined.
    EXPECT_FALSE(p.stdin_pipe().is_open());
    p.kill();
    EXPECT_EQ(p.wait(), -SIGKILL);
  });
}

// The child's chdir fails with the errno a missing program gives: the error
// names the directory, whatever the reason (not only ENOENT).
TEST_F(Processes, AWorkingDirectoryThatCannotBeEnteredIsNamedWhateverTheReason) {
  run([] {
    try {
      Process::exec({"true"}, {.cwd = "/etc/passwd"});  // a file, not a directory
      ADD_FAILURE() << "no error";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ENOTDIR);
      EXPECT_NE(std::string(e.what()).find("working directory /etc/passwd"), std::string::npos)
          << e.what();
    }
  });
}

// SIGCHLD's disposition for one test, restored however it ends.
class SigchldAs {
 public:
  explicit SigchldAs(const struct sigaction& action) { ::sigaction(SIGCHLD, &action, &saved_); }
  ~SigchldAs() { ::sigaction(SIGCHLD, &saved_, nullptr); }

 private:
  struct sigaction saved_ {};
};

// With SIGCHLD ignored the kernel reaps each child as it exits and no exit
// status can be had: exec says so before starting one.
TEST_F(Processes, ExecIsRefusedWhileSigchldIsIgnored) {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction no_zombies {};
  no_zombies.sa_handler = SIG_DFL;
  no_zombies.sa_flags = SA_NOCLDWAIT;
  struct sigaction ignore_with_siginfo {};  // sa_handler and sa_sigaction are one field
  ignore_with_siginfo.sa_handler = SIG_IGN;
  ignore_with_siginfo.sa_flags = SA_SIGINFO;
  for (const struct sigaction& action : {ignore, no_zombies, ignore_with_siginfo}) {
    SigchldAs as(action);
    run([] {
      try {
        Process::exec({"true"}).wait();
        ADD_FAILURE() << "no error";
      } catch (const std::logic_error& e) {
        EXPECT_NE(std::string(e.what()).find("SIGCHLD"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("SIG_DFL"), std::string::npos) << e.what();
      }
    });
  }
}

// A handler that reaps every child takes the exit status first: wait() (or
// exec, if the child was gone before it was watched) says who is to blame.
TEST_F(Processes, AChildReapedBySomeoneElseIsAnErrorSayingSo) {
  struct sigaction reap_all {};
  reap_all.sa_handler = [](int) {
    const int saved = errno;
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    errno = saved;
  };
  reap_all.sa_flags = SA_RESTART;
  SigchldAs as(reap_all);
  run([] {
    try {
      Process::exec({"sleep", "0.1"}).wait();
      ADD_FAILURE() << "no error";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ECHILD);
      EXPECT_NE(std::string(e.what()).find("reaped by someone else"), std::string::npos)
          << e.what();
    }
  });
}

// A feeding of stdin that fails (here its write deadline passes while the
// child sleeps) still closes stdin: the child reads to its end and exits,
// and communicate() throws the feeding's error instead of waiting forever.
TEST_F(Processes, AFeedThatFailsClosesStdinSoTheChildStillEnds) {
  run([] {
    auto p =
        Process::exec({"sh", "-c", "sleep 0.2; wc -c"}, {.in = Stdio::pipe, .out = Stdio::pipe});
    p.stdin_pipe().set_write_deadline(Clock::now() + 50ms);
    Task<std::string> talk = spawn([&]() -> std::string {
      try {
        (void)p.communicate(std::string(8 << 20, 'x'));  // more than the pipe holds
        return "no error";
      } catch (const TimeoutError&) {
        return "the write deadline";
      } catch (const Cancelled&) {
        return "hung: cancelled by the watchdog";
      }
    });
    Task<void> watchdog = spawn([&] {
      this_fiber::sleep_for(10s);
      talk.cancel();
    });
    EXPECT_EQ(talk.join(), "the write deadline");
    watchdog.cancel();
    EXPECT_EQ(p.wait(), 0);  // wc saw the end of its input
  });
}

}  // namespace
}  // namespace fiberloop
