#include "io/wait.h"

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
  signalfd_siginfo info{};
  handle.retry(
      internal::IoHandle::Direction::kRead, "wait_signal",
      [&](int signal_fd) { return ::read(signal_fd, &info, sizeof info); },  // whole records
      [](int err) { internal::throw_io_error(err, "wait_signal: read signalfd"); });
  return static_cast<int>(info.ssi_signo);
}

}  // namespace fiberloop
