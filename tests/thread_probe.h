// What the threads of this process are doing, read from /proc/self/task:
// the system call each is blocked in, its name, its CPU time. For tests that
// must act while a loop's thread is blocked in its wait, or a worker in a
// system call, rather than hope a sleep got it there (a loaded machine
// outlasts any sleep), and for tests about one thread's CPU use.
#pragma once

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

namespace fiberloop::testing {

// The calling thread's id, as /proc names it.
inline pid_t this_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

// Whether thread `tid` of this process is blocked in system call `nr` now.
// A running thread's file says "running", which reads as no number.
inline bool blocks_in(pid_t tid, long nr) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/syscall");
  long n = -1;
  return in >> n && n == nr;
}

// The thread of this process blocked in system call `nr` now, if any (0:
// none).
inline pid_t thread_blocked_in(long nr) {
  std::error_code failed;  // (a thread may end while we look)
  for (std::filesystem::directory_iterator task("/proc/self/task", failed), end;
       !failed && task != end; task.increment(failed)) {
    std::ifstream in(task->path() / "syscall");
    long n = -1;
    if (in >> n && n == nr) return static_cast<pid_t>(std::stol(task->path().filename()));
  }
  return 0;
}

inline bool a_thread_blocks_in(long nr) { return thread_blocked_in(nr) != 0; }

// Whether thread `tid` is blocked in a loop's wait for events, on either
// backend: epoll_wait or epoll_pwait2 (epoll), io_uring_enter (io_uring).
inline bool blocks_in_loop_wait(pid_t tid) {
  return blocks_in(tid, SYS_epoll_wait) || blocks_in(tid, SYS_epoll_pwait2) ||
         blocks_in(tid, SYS_io_uring_enter);
}

// Blocks the calling thread until thread `tid` (a loop's) blocks in its
// wait for events, checking every 100 us; throws std::runtime_error after
// 10 s. For a post that must reach a loop asleep in the kernel.
inline void await_loop_wait(pid_t tid) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!blocks_in_loop_wait(tid)) {
    if (std::chrono::steady_clock::now() > give_up) {
      throw std::runtime_error("thread " + std::to_string(tid) +
                               " did not block in its loop's wait in 10 s");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

// The calling thread's name, as `name` below reads it.
inline std::string this_thread_name() {
  std::ifstream in("/proc/thread-self/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

// The thread of this process named `name` (pthread_setname_np; fiberloop's
// own start with "fl-"), or 0 if none.
inline pid_t thread_named(const std::string& name) {
  std::error_code failed;
  for (std::filesystem::directory_iterator task("/proc/self/task", failed), end;
       !failed && task != end; task.increment(failed)) {
    std::ifstream in(task->path() / "comm");
    std::string comm;
    if (std::getline(in, comm) && comm == name) {
      return static_cast<pid_t>(std::stol(task->path().filename()));
    }
  }
  return 0;
}

// The CPU time thread `tid` has used, user and system, in clock ticks
// (sysconf(_SC_CLK_TCK) per second); -1 if it cannot be read. Fields 14 and
// 15 of its stat file, counted after the name, which may hold spaces.
inline long cpu_ticks(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return -1;
  const auto name_end = stat.rfind(')');
  if (name_end == std::string::npos) return -1;
  std::istringstream fields(stat.substr(name_end + 2));  // from field 3, the state
  std::string skip;
  for (int field = 3; field < 14; ++field) fields >> skip;
  long user = -1, system = -1;
  fields >> user >> system;
  return fields ? user + system : -1;
}

}  // namespace fiberloop::testing
