#include "io/signal.h"

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

#include "io/internal/io_handle.h"

namespace fiberloop {

int wait_signal(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  if (int err = ::pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0) {
    internal::throw_io_error(err, "wait_signal: pthread_sigmask");
  }
  const int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) internal::throw_io_error(errno, "wait_signal: signalfd");
  internal::IoHandle handle(fd);  // owns and closes it
  for (;;) {
    signalfd_siginfo info;
    const ssize_t n = ::read(fd, &info, sizeof info);
    if (n == static_cast<ssize_t>(sizeof info)) return static_cast<int>(info.ssi_signo);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      internal::throw_io_error(errno, "wait_signal: read signalfd");
    }
    handle.wait(internal::IoHandle::Direction::kRead, "wait_signal");
  }
}

}  // namespace fiberloop
