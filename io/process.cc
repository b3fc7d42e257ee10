#include "io/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "io/internal/c_string.h"
#include "io/internal/process_pipe.h"
#include "io/internal/reaper.h"
#include "io/internal/socket.h"
#include "io/wait.h"
#include "loop/internal/scheduler.h"
#include "loop/loop.h"

extern char** environ;

namespace fiberloop {

namespace {

constexpr const char* kReapedElsewhere =
    "(a SIGCHLD handler or another thread calling wait() or waitpid(-1, ...)?), so its exit "
    "status is lost; leave a Process's child for the Process to reap";

[[noreturn]] void fail(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

// The system calls themselves: glibc 2.36's <sys/pidfd.h> declares its
// wrappers without C linkage.
int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
int pidfd_send_signal(int pidfd, int signo) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0));
}

// The exit status as Process::wait() reports it.
int status_of(const siginfo_t& info) {
  return info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
}

// Refuses to start a child whose exit status the kernel would throw away:
// with SIGCHLD ignored (SIG_IGN, or SA_NOCLDWAIT; both survive execve, so a
// parent may have left them) a child is reaped the moment it exits.
void refuse_if_children_are_reaped_by_the_kernel(const std::string& program) {
  struct sigaction action {};
  if (::sigaction(SIGCHLD, nullptr, &action) != 0) return;
  // (sa_handler and sa_sigaction share their storage: the kernel compares
  // it with SIG_IGN whatever SA_SIGINFO says.)
  const bool ignored = action.sa_handler == SIG_IGN;
  if (!ignored && (action.sa_flags & SA_NOCLDWAIT) == 0) return;
  throw std::logic_error(
      "Process::exec " + program + ": SIGCHLD is " +
      (ignored ? "ignored (SIG_IGN)" : "set with SA_NOCLDWAIT") +
      " in this process (perhaps inherited from its parent), so the kernel reaps every child "
      "as it exits and its exit status is lost; restore the default first: "
      "signal(SIGCHLD, SIG_DFL)");
}

// A child is watched through a pidfd, opened once it exists. The fd it
// will take is held from before anything else exec() opens (the pipes)
// until the child exists, so that exec fails before any child starts if
// none can be had (no fd left, a seccomp filter, a kernel before 5.3), and
// the pipes cannot take the last one. (A child started and then killed
// because its pidfd_open failed would have run for a moment.) Another
// thread can still take the fd in between: then the child is killed, as
// below.
class PidfdReservation {
 public:
  explicit PidfdReservation(const std::string& program) : fd_(pidfd_open(::getpid())) {
    if (fd_ < 0) {
      const int err = errno;
      fail(err, "exec " + program +
                    ": pidfd_open, needed to watch the child (no child was started; the limit "
                    "of open fds, a seccomp filter or a kernel before Linux 5.3 forbids it)");
    }
  }
  ~PidfdReservation() {
    if (fd_ >= 0) ::close(fd_);
  }
  PidfdReservation(const PidfdReservation&) = delete;
  PidfdReservation& operator=(const PidfdReservation&) = delete;
  // Frees the fd, for the child's pidfd.
  void release() noexcept { ::close(std::exchange(fd_, -1)); }

 private:
  int fd_;
};

// Why a child could not chdir to `cwd`: its errno, or 0 if it could.
int cwd_error(const std::string& cwd) {
  struct stat st {};
  if (::stat(cwd.c_str(), &st) != 0) return errno;
  if (!S_ISDIR(st.st_mode)) return ENOTDIR;
  return ::access(cwd.c_str(), X_OK) != 0 ? errno : 0;
}

// posix_spawn's file actions and attributes, freed on every way out.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

// Both ends of a socket pair: fds[0] the parent's (non-blocking), fds[1]
// the child's (blocking, as programs expect). Closed unless released.
struct PipeFds {
  int fds[2] = {-1, -1};
  ~PipeFds() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
};

// Moves `fd` above 2 if it is 0, 1 or 2 (free in a parent whose own
// standard streams are closed, a daemon's): the child's dup2()s onto 0-2
// would otherwise overwrite one stream's pipe with another's before it is
// placed (Python's subprocess takes the same care). Returns: false, with
// errno, if it cannot.
bool lift_above_stdio(int& fd) {
  if (fd > 2) return true;
  const int lifted = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (lifted < 0) return false;
  ::close(fd);
  fd = lifted;
  return true;
}

}  // namespace

Process::Process() noexcept = default;

void Process::abort_waited(const char* what) const noexcept {
  std::fprintf(
      stderr,
      "fiberloop: %s: %d fiber(s) still parked in wait() or communicate() for pid %d (%s), "
      "which use the "
      "Process when they wake; join them before the Process is destroyed or moved\n",
      what, waiting_, pid_, program_.c_str());
  std::abort();
}

Process::Process(Process&& other) noexcept {
  if (other.waiting_ > 0) other.abort_waited("Process moved from");
  program_ = std::move(other.program_);
  pid_ = std::exchange(other.pid_, -1);
  pidfd_ = std::exchange(other.pidfd_, -1);
  returncode_ = std::exchange(other.returncode_, std::nullopt);
  own_group_ = std::exchange(other.own_group_, false);
  for (int i = 0; i < 3; ++i) pipes_[i] = std::move(other.pipes_[i]);
}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    if (waiting_ > 0) abort_waited("Process assigned over");
    if (other.waiting_ > 0) other.abort_waited("Process moved from");
    Process dropped(std::move(*this));
    program_ = std::move(other.program_);
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::exchange(other.pidfd_, -1);
    returncode_ = std::exchange(other.returncode_, std::nullopt);
    own_group_ = std::exchange(other.own_group_, false);
    for (int i = 0; i < 3; ++i) pipes_[i] = std::move(other.pipes_[i]);
  }
  return *this;
}

Process::~Process() {
  if (waiting_ > 0) abort_waited("~Process");
  for (auto& p : pipes_) p.reset();
  if (pidfd_ < 0) return;
  if (returncode_) {
    ::close(pidfd_);
  } else {
    internal::reap_in_background(pidfd_, pid_);  // waits (or finds it exited) and closes
  }
}

Process Process::exec(std::vector<std::string> argv, ProcessOptions options) {
  if (argv.empty()) throw std::invalid_argument("Process::exec: argv is empty (no program to run)");
  if (argv[0].empty()) {
    throw std::invalid_argument("Process::exec: the program name, argv[0], is empty");
  }
  for (const std::string& arg : argv) internal::require_c_string(arg, "Process::exec argv");
  internal::require_c_string(options.cwd, "Process::exec cwd");
  if (options.env) {
    for (const std::string& entry : *options.env) {
      internal::require_c_string(entry, "Process::exec env");
    }
  }
  const std::string& program = argv[0];
  const Stdio modes[3] = {options.in, options.out, options.err};
  const bool piped = modes[0] == Stdio::pipe || modes[1] == Stdio::pipe || modes[2] == Stdio::pipe;
  if (piped && internal::Scheduler::current() == nullptr) {  // before a child exists
    throw std::logic_error("Process::exec " + program +
                           ": pipes need a Loop on this thread (they are Streams of its loop)");
  }
  refuse_if_children_are_reaped_by_the_kernel(program);
  PidfdReservation pidfd_fd(program);
  SpawnSetup setup;
  PipeFds pipes[3];
  for (int i = 0; i < 3; ++i) {
    if (modes[i] == Stdio::pipe) {
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pipes[i].fds) != 0 ||
          !lift_above_stdio(pipes[i].fds[0]) || !lift_above_stdio(pipes[i].fds[1])) {
        const int err = errno;  // before the message is built
        fail(err, "exec " + program + ": socketpair for a pipe (no child was started)");
      }
      ::fcntl(pipes[i].fds[0], F_SETFL, ::fcntl(pipes[i].fds[0], F_GETFL) | O_NONBLOCK);
      posix_spawn_file_actions_adddup2(&setup.actions, pipes[i].fds[1], i);
    } else if (modes[i] == Stdio::null) {
      posix_spawn_file_actions_addopen(&setup.actions, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY,
                                       0);
    }
  }
  if (!options.cwd.empty()) {
    posix_spawn_file_actions_addchdir_np(&setup.actions, options.cwd.c_str());
  }
  // The child starts with no signal blocked and every signal at its default.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&setup.attr, &none);
  posix_spawnattr_setsigdefault(&setup.attr, &all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (options.start_new_session) {
    flags |= POSIX_SPAWN_SETSID;
  } else if (options.new_process_group) {
    flags |= POSIX_SPAWN_SETPGROUP;  // group 0: the child's own pid
    posix_spawnattr_setpgroup(&setup.attr, 0);
  }
  posix_spawnattr_setflags(&setup.attr, flags);

  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<char*> env;
  if (options.env) {
    for (std::string& e : *options.env) env.push_back(e.data());
    env.push_back(nullptr);
  }
  pid_t pid = -1;
  const int err = ::posix_spawnp(&pid, program.c_str(), &setup.actions, &setup.attr, args.data(),
                                 options.env ? env.data() : environ);
  if (err != 0) {
    // The child's chdir fails with the same errno as a missing program.
    if (const int why = options.cwd.empty() ? 0 : cwd_error(options.cwd)) {
      fail(why, "exec " + program + ": cannot enter the working directory " + options.cwd);
    }
    fail(err, "exec " + program);
  }
  Process p;
  p.program_ = program;
  p.pid_ = pid;
  p.own_group_ = options.new_process_group || options.start_new_session;
  pidfd_fd.release();
  p.pidfd_ = pidfd_open(pid);
  if (p.pidfd_ < 0) {
    const int open_err = errno;
    // Exited and reaped already (ESRCH), or its pid already reused by a
    // thread of another process (EINVAL): the pid is not ours to kill.
    if (open_err == ESRCH || open_err == EINVAL) {
      fail(ECHILD, "exec " + program + ": pid " + std::to_string(pid) +
                       " exited and was reaped by someone else before it could be watched " +
                       kReapedElsewhere);
    }
    ::kill(pid, SIGKILL);  // cannot watch it: reap it here rather than leave it
    ::waitpid(pid, nullptr, 0);
    fail(open_err, "exec " + program + ": pidfd_open");
  }
  static const char* const kNames[3] = {"stdin", "stdout", "stderr"};
  for (int i = 0; i < 3; ++i) {
    if (modes[i] != Stdio::pipe) continue;
    ::close(std::exchange(pipes[i].fds[1], -1));  // the child's end: the child has it now
    internal::Socket socket(std::exchange(pipes[i].fds[0], -1));
    p.pipes_[i] =
        std::make_unique<Pipe>(std::move(socket), std::string(kNames[i]) + " of pid " +
                                                      std::to_string(pid) + " (" + program + ")");
  }
  return p;
}

Process::Pipe& Process::pipe(int which, const char* name) {
  if (!pipes_[which]) {
    throw std::logic_error(std::string("Process::") + name + ": that stream of pid " +
                           std::to_string(pid_) + " is not a pipe (use Stdio::pipe)");
  }
  return *pipes_[which];
}

Stream& Process::stdin_pipe() { return pipe(0, "stdin_pipe"); }
Stream& Process::stdout_pipe() { return pipe(1, "stdout_pipe"); }
Stream& Process::stderr_pipe() { return pipe(2, "stderr_pipe"); }

int Process::wait() {
  if (pidfd_ < 0) throw std::logic_error("Process::wait: an empty Process (moved from)");
  for (;;) {
    if (returncode_) return *returncode_;  // another fiber's wait() saw it while we parked
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(pidfd_), &info, WEXITED | WNOHANG) != 0) {
      const int err = errno;
      if (err == EINTR) continue;
      const std::string what = "wait for pid " + std::to_string(pid_) + " (" + program_ + ")";
      if (err == ECHILD) fail(ECHILD, what + ": it was reaped by someone else " + kReapedElsewhere);
      fail(err, what);
    }
    if (info.si_pid != 0) {
      returncode_ = status_of(info);
      return *returncode_;
    }
    const internal::Waiting waiting(waiting_);
    internal::wait_readable_as(pidfd_, "Process::wait");  // readable once the child has exited
  }
}

void Process::send_signal(int signo) {
  if (returncode_) return;  // waited for: the pid may be someone else's now
  if (pidfd_ < 0) {
    throw std::logic_error("Process::send_signal(" + std::to_string(signo) +
                           "): an empty Process (moved from, or default-made): no child to signal");
  }
  if (pidfd_send_signal(pidfd_, signo) != 0 && errno != ESRCH) {
    const int err = errno;  // before the message is built
    fail(err, "send signal " + std::to_string(signo) + " to pid " + std::to_string(pid_) + " (" +
                  program_ + ")");
  }
}

void Process::send_signal_to_group(int signo) {
  const std::string what = "Process::send_signal_to_group(" + std::to_string(signo) + ")";
  if (pid_ < 0) {
    throw std::logic_error(what + ": an empty Process (moved from, or default-made): no child");
  }
  if (!own_group_) {
    throw std::logic_error(what + ": pid " + std::to_string(pid_) + " (" + program_ +
                           ") shares this process's group; start it with "
                           "ProcessOptions::new_process_group (or start_new_session)");
  }
  // Not waited for, the child is alive or a zombie: its pid, which is the
  // group's id, is not reused meanwhile.
  if (returncode_) return;
  if (::killpg(pid_, signo) != 0 && errno != ESRCH) {
    const int err = errno;  // before the message is built
    fail(err, "send signal " + std::to_string(signo) + " to the process group of pid " +
                  std::to_string(pid_) + " (" + program_ + ")");
  }
}

void Process::terminate() { send_signal(SIGTERM); }
void Process::kill() { send_signal(SIGKILL); }

}  // namespace fiberloop
