// Process: run a program as a child and talk to it through Streams
// (asyncio's subprocess, Go's os/exec).
//
//   auto p = fiberloop::Process::exec({"grep", "-c", "x"},
//                                     {.in = fiberloop::Stdio::pipe, .out =
//                                     fiberloop::Stdio::pipe});
//   auto [out, err] = p.communicate("x\ny\nx\n");   // "2\n"; then p.returncode() == 0
//
// The child is started with posix_spawn (PATH lookup as in execvp), its
// signal mask empty and every signal at its default action (a LoopGroup
// thread blocks all signals; the child must not inherit that; glibc leaves
// its two internal signals, 32 and 33, ignored), and watched
// through a pidfd: wait() parks the fiber, never a thread. A pipe is one
// end of a Unix socket pair (as libuv does), so writes to a child that has
// gone raise no SIGPIPE: they throw EPIPE. (A child cannot reopen such a
// pipe by path: `cat /dev/stdin` fails with ENXIO where `cat` works.)
//
// A Process never leaves a zombie: one destroyed while its child still runs
// hands the child to a reaper thread, which waits for it in the background.
// Destroying a Process does not kill the child, and neither does a wait()
// that is cancelled or times out (as in asyncio): kill() it first if that is
// what you want.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/socket_stream.h"
#include "io/stream.h"

namespace fiberloop {

// What a child's stdin, stdout or stderr is connected to.
enum class Stdio {
  inherit,  // the parent's own
  pipe,     // a Stream the parent holds (stdin_pipe(), ...)
  null,     // /dev/null
};

struct ProcessOptions {
  Stdio in = Stdio::inherit;
  Stdio out = Stdio::inherit;
  Stdio err = Stdio::inherit;
  std::string cwd{};                              // "" = the parent's
  std::optional<std::vector<std::string>> env{};  // "NAME=value" each; nullopt = the parent's
  // The child leads a process group of its own (its group id is its pid),
  // as Go's SysProcAttr.Setpgid and Python's process_group=0 do: then
  // send_signal_to_group() reaches what it starts too (a shell's children),
  // and a terminal's Ctrl-C no longer reaches it.
  bool new_process_group = false;
  // The child leads a new session (setsid(2)), as Python's
  // start_new_session does: no controlling terminal, and a process group of
  // its own as with new_process_group.
  bool start_new_session = false;
};

class Process {
 public:
  Process() noexcept;  // empty: no child
  Process(Process&&) noexcept;
  Process& operator=(Process&&) noexcept;
  // Closes the parent's pipe ends and, if the child has not been waited for,
  // hands it to the background reaper (no zombie, no kill).
  // Requires: no fiber is parked in wait() or communicate() on it, for this
  // and for the moves: such a fiber uses the Process when it wakes. Checked:
  // the process stops with a message naming the child.
  ~Process();

  // Starts argv[0] (searched in this process's PATH, not options.env's,
  // unless it contains a '/') with `argv`.
  // Throws: std::system_error naming argv[0] ("exec no-such-tool: No such
  //         file or directory"), or the cwd it cannot enter (ENOENT,
  //         ENOTDIR, EACCES), or pidfd_open's error (EMFILE, ENOSYS,
  //         EPERM; before any child starts); std::invalid_argument for an
  //         empty argv or program name (argv[0]), or
  //         a NUL byte in argv, cwd or env;
  //         std::logic_error if SIGCHLD is ignored in this process (SIG_IGN
  //         or SA_NOCLDWAIT: the kernel would discard the exit status) or
  //         if a pipe is asked for on a thread without a Loop.
  static Process exec(std::vector<std::string> argv, ProcessOptions options = {});

  // The child's process id; -1 for an empty or moved-from Process. Stays
  // the same after wait() reaped the child (the kernel may give the number
  // to another process then: signal the child through send_signal(), which
  // knows, not ::kill(pid())).
  int pid() const noexcept { return pid_; }

  // The parent's end of each pipe. Throws: std::logic_error unless that
  // stream was Stdio::pipe.
  Stream& stdin_pipe();
  Stream& stdout_pipe();
  Stream& stderr_pipe();

  // Parks until the child exits. Returns: its exit status, or -N if signal
  // N killed it. Cancelled or timed out, it leaves the child running.
  // Throws: Cancelled; TimeoutError; std::logic_error on an empty Process,
  //         or when it must wait outside a fiber;
  //         std::system_error (ECHILD) if something else reaped the child (a
  //         SIGCHLD handler or a thread calling waitpid(-1, ...)): leave a
  //         Process's child to the Process.
  int wait();
  // The exit status once wait() saw it (or the child was found exited).
  std::optional<int> returncode() const noexcept { return returncode_; }

  // Writes `input` to stdin and closes it, reads stdout and stderr to their
  // ends, all at once (so a child that fills one pipe while we feed another
  // never deadlocks), then waits. Streams that are not pipes, or pipes
  // closed already (stdout_pipe().close()), give "" (Python's communicate
  // skips those too); a pipe another fiber closes meanwhile ends there.
  // Returns: {stdout, stderr}. Throws: what the streams and wait() throw;
  // std::logic_error for input when stdin is not a pipe or was closed. A
  // child that exits without reading all its input is not an error. stdin
  // is closed however the feeding ends (a write deadline, say), so a child
  // reading it to its end still ends, and the feeding's error is thrown
  // once it has.
  std::pair<std::string, std::string> communicate(std::string_view input = {});

  // Sends `signo` (pidfd_send_signal: never a recycled pid). Does nothing
  // once the child has been waited for. Throws: std::system_error;
  // std::logic_error on an empty Process (as wait() does).
  void send_signal(int signo);
  void terminate();  // SIGTERM
  void kill();       // SIGKILL
  // Sends `signo` to the child's process group (killpg(2)): the child and
  // every process it started that stayed in the group, which kill() alone
  // leaves running (`sh -c "a | b"`). Does nothing once the child has been
  // waited for (its group id may name another group by then): signal the
  // group first, then wait. Throws: std::logic_error on an empty Process,
  // or one started without new_process_group or start_new_session;
  // std::system_error.
  void send_signal_to_group(int signo);

 private:
  class Pipe;
  Pipe& pipe(int which, const char* name);

  // Stops the process (after a message naming the child): this Process is
  // destroyed or moved while fibers are parked in its wait().
  [[noreturn]] void abort_waited(const char* what) const noexcept;

  std::string program_;  // argv[0], for messages
  pid_t pid_ = -1;
  int pidfd_ = -1;
  std::optional<int> returncode_;
  bool own_group_ = false;  // started with a process group of its own
  int waiting_ = 0;  // fibers in wait() or communicate(), which use this Process when they wake
  std::unique_ptr<Pipe> pipes_[3];
};

}  // namespace fiberloop
