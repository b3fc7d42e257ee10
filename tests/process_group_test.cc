// Process groups and sessions: a child started with new_process_group or
// start_new_session leads a group of its own, send_signal_to_group()
// reaches the processes it started (which kill() alone leaves running), and
// misuse is refused with a message that says what to do.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "fiberloop.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

// What /proc/PID/stat says of a process: its state letter ('\0' once the
// pid is gone), its process group and its session.
struct ProcInfo {
  char state = '\0';
  pid_t group = -1;
  pid_t session = -1;
};

ProcInfo proc_info(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string all;
  if (!std::getline(stat, all)) return {};
  std::istringstream rest(all.substr(all.rfind(')') + 1));  // after "(comm)"
  ProcInfo info;
  pid_t parent;
  rest >> info.state >> parent >> info.group >> info.session;
  return info;
}

// Waits (10 s at most) until `pid` is gone or a zombie: dead either way.
bool ends(pid_t pid) {
  for (int i = 0; i < 10'000; ++i) {
    const char state = proc_info(pid).state;
    if (state == '\0' || state == 'Z') return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

// A shell in a group of its own that starts a sleeper in the background and
// prints the sleeper's pid. Returns {the shell, the sleeper's pid}.
std::pair<Process, pid_t> shell_with_a_sleeper() {
  ProcessOptions options;
  options.out = Stdio::pipe;
  options.new_process_group = true;
  Process shell = Process::exec({"sh", "-c", "sleep 60 & echo $!; wait"}, options);
  std::string line;
  with_timeout(10s, [&] {
    char c;
    while (shell.stdout_pipe().read({&c, 1}) == 1 && c != '\n') line += c;
  });
  return {std::move(shell), static_cast<pid_t>(std::stol(line))};
}

TEST(ProcessGroup, SignallingTheGroupReachesWhatTheChildStarted) {
  fiberloop::run([] {
    auto [shell, sleeper] = shell_with_a_sleeper();
    EXPECT_EQ(proc_info(shell.pid()).group, shell.pid());
    EXPECT_EQ(proc_info(sleeper).group, shell.pid());
    shell.send_signal_to_group(SIGKILL);
    EXPECT_EQ(with_timeout(10s, [&] { return shell.wait(); }), -SIGKILL);
    EXPECT_TRUE(ends(sleeper));
  });
}

// kill() reaches the shell alone; the group is still there to signal
// until the shell is waited for.
TEST(ProcessGroup, KillLeavesTheGroupWhichIsSignalledBeforeTheWait) {
  fiberloop::run([] {
    auto [shell, sleeper] = shell_with_a_sleeper();
    shell.kill();
    this_fiber::sleep_for(50ms);
    EXPECT_NE(proc_info(sleeper).state, 'Z');
    EXPECT_NE(proc_info(sleeper).state, '\0');
    shell.send_signal_to_group(SIGKILL);
    EXPECT_EQ(with_timeout(10s, [&] { return shell.wait(); }), -SIGKILL);
    EXPECT_TRUE(ends(sleeper));
    shell.send_signal_to_group(SIGKILL);  // waited for: nothing (the id may be reused)
  });
}

TEST(ProcessGroup, ANewSessionLeadsItsOwnSessionAndGroup) {
  fiberloop::run([] {
    ProcessOptions options;
    options.start_new_session = true;
    Process child = Process::exec({"sleep", "60"}, options);
    const ProcInfo info = proc_info(child.pid());
    EXPECT_EQ(info.session, child.pid());
    EXPECT_EQ(info.group, child.pid());
    EXPECT_NE(proc_info(::getpid()).session, child.pid());
    child.send_signal_to_group(SIGTERM);
    EXPECT_EQ(with_timeout(10s, [&] { return child.wait(); }), -SIGTERM);
  });
}

TEST(ProcessGroup, SignallingTheGroupOfAChildInOursIsRefused) {
  fiberloop::run([] {
    Process child = Process::exec({"sleep", "60"});
    EXPECT_EQ(proc_info(child.pid()).group, proc_info(::getpid()).group);
    try {
      child.send_signal_to_group(SIGKILL);  // would signal this process's own group
      ADD_FAILURE() << "no error";
    } catch (const std::logic_error& e) {
      EXPECT_NE(std::string(e.what()).find("new_process_group"), std::string::npos) << e.what();
    }
    child.kill();
    EXPECT_EQ(with_timeout(10s, [&] { return child.wait(); }), -SIGKILL);
    Process empty;
    EXPECT_THROW(empty.send_signal_to_group(SIGKILL), std::logic_error);
  });
}

}  // namespace
}  // namespace fiberloop
