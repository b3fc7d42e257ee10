#include "io/wait.h"

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

#include "io/internal/io_handle.h"

namespace fiberloop {

int wait_signal(std::initializer_list<int> signals) {
  // Every check before the mask changes: a call that throws blocks nothing.
  internal::Scheduler* const loop = internal::Scheduler::current();
  if (loop == nullptr) internal::throw_no_loop("wait_signal");
  (void)loop->running_fiber("wait_signal");  // (a callback cannot wait)
  if (signals.size() == 0) {
    throw std::invalid_argument("wait_signal: no signals given (it would wait forever)");
  }
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) {
    if (s == SIGKILL || s == SIGSTOP || sigaddset(&set, s) != 0) {
      throw std::invalid_argument("wait_signal: " + std::to_string(s) +
                                  " is not a signal that can be caught (1 to 64 but for 32 and "
                                  "33, which the C library keeps, SIGKILL and SIGSTOP)");
    }
    // A fault blocked in the faulting thread kills the process without the
    // handlers' report (a fiber's stack overflow); SIGURG is the stall
    // detector's. Neither may be taken from fiberloop.
    if (s == SIGSEGV || s == SIGBUS || s == SIGFPE || s == SIGILL || s == SIGTRAP || s == SIGSYS ||
        s == SIGURG) {
      throw std::invalid_argument(
          "wait_signal: " + std::to_string(s) + " (" + ::sigabbrev_np(s) +
          ") is fiberloop's: a fault signal (blocked, a fault ends the process without a report, "
          "a fiber's stack overflow included) or the stall detector's (SIGURG); wait for "
          "another");
    }
  }
  // Blocked first, so that one arriving meanwhile waits for the signalfd.
  sigset_t before;
  if (int err = ::pthread_sigmask(SIG_BLOCK, &set, &before); err != 0) {
    internal::throw_io_error(err, "wait_signal: pthread_sigmask");
  }
  const int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    internal::throw_io_error(err, "wait_signal: signalfd");
  }
  std::optional<internal::IoHandle> handle;
  try {
    handle.emplace(fd);  // owns and closes it
  } catch (...) {
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    throw;
  }
  signalfd_siginfo info{};
  handle->retry(
      internal::IoHandle::Direction::kRead, "wait_signal",
      [&](int signal_fd) { return ::read(signal_fd, &info, sizeof info); },  // whole records
      [](int err) { internal::throw_io_error(err, "wait_signal: read signalfd"); });
  return static_cast<int>(info.ssi_signo);
}

}  // namespace fiberloop
