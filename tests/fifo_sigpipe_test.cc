// write_file's EPIPE and the SIGPIPE the kernel sends with it: the one the
// write raised (sent to the loop's thread) is taken back, and one that was
// pending for the whole process already stays pending, once (it used to
// leave both: the thread's, unseen by the check that saw the process's).
// In a child process, so that every thread there blocks SIGPIPE and a
// signal sent to the process stays pending.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <system_error>

#include "fiberloop.h"
#include "tests/temp_dir.h"

// The child starts fiberloop's threads after a fork, which ThreadSanitizer
// refuses by default (the parent has no threads of its own by then).
extern "C" const char* __tsan_default_options() { return "die_after_fork=0"; }

namespace fiberloop {
namespace {

// How many SIGPIPEs this thread can take (its own, then the process's; at
// most one of each, as standard signals do not queue).
int take_pending_sigpipes(const sigset_t& pipe_signal) {
  int taken = 0;
  const timespec now{};
  while (::sigtimedwait(&pipe_signal, nullptr, &now) == SIGPIPE) ++taken;
  return taken;
}

// The child's part. Returns its exit status: 0, or which check failed.
int epipe_with_a_sigpipe_pending_for_the_process(const std::string& fifo) {
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);  // the threads to come inherit it
  if (::mkfifo(fifo.c_str(), 0600) != 0) return 10;
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (reader < 0) return 11;
  bool epipe = false;
  fiberloop::run([&] {
    ::kill(::getpid(), SIGPIPE);  // pending for the process: every thread blocks it
    auto writer = spawn([&] { write_file(fifo, std::string(1 << 20, 'x')); });
    wait_readable(reader);  // the writer is there, and soon parked on a full FIFO
    ::close(reader);
    try {
      writer.join();
    } catch (const std::system_error& e) {
      epipe = e.code().value() == EPIPE;
    }
  });
  if (!epipe) return 12;
  const int pending = take_pending_sigpipes(pipe_signal);
  if (pending == 0) return 13;  // the process's was taken
  if (pending > 1) return 14;   // the write's was left
  return 0;
}

TEST(FifoSigpipe, TheWritesSigpipeIsTakenBackAndTheProcesssStays) {
  const std::string dir = testing::temp_dir("sigpipe");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) std::_Exit(epipe_with_a_sigpipe_pending_for_the_process(dir + "/fifo"));
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "signal " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "10-11: setup; 12: no EPIPE; 13: the process's SIGPIPE was taken; 14: the write's "
         "SIGPIPE was left pending beside the process's";
}

}  // namespace
}  // namespace fiberloop
