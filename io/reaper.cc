#include "io/internal/reaper.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "loop/internal/own_thread.h"

namespace fiberloop::internal {
namespace {

// Reaps `pidfd`'s child if it has exited (without blocking, or blocking
// until it does). Returns: whether it is gone; an error (ECHILD: reaped
// elsewhere) counts as gone too.
bool reaped(int pidfd, bool block = false) noexcept {
  siginfo_t info{};
  int r;
  do {
    r = ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | (block ? 0 : WNOHANG));
  } while (r != 0 && errno == EINTR);
  return r != 0 || info.si_pid != 0;
}

class Reaper {
 public:
  // Never destroyed: its thread may be polling at exit.
  static Reaper& instance() {
    static Reaper* reaper = new Reaper;
    return *reaper;
  }

  void adopt(int pidfd) noexcept {
    if (wake_fd_ < 0) {  // no poller (said when it failed): a thread for this child
      try {
        start_own_thread("a child's reaper", [pidfd] {
          reaped(pidfd, /*block=*/true);
          ::close(pidfd);
        }).detach();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "fiberloop: cannot reap a child (pidfd %d) in the background: %s\n",
                     pidfd, e.what());
      }
      return;
    }
    {
      std::lock_guard lock(mutex_);
      incoming_.push_back(pidfd);
      ++waiting_;
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }
  int waiting() const noexcept { return waiting_.load(); }

 private:
  Reaper() : wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (wake_fd_ < 0) {
      std::perror(
          "fiberloop: the child reaper cannot make its eventfd (a thread per child instead)");
      return;
    }
    start_own_thread("the child reaper", [this] { run(); }).detach();
  }

  void run() {
    std::vector<int> children;
    std::vector<pollfd> fds;
    for (;;) {
      fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
      for (int fd : children) fds.push_back(pollfd{fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) < 0) continue;  // EINTR
      if (fds[0].revents != 0) {
        std::uint64_t count;
        [[maybe_unused]] ssize_t n = ::read(wake_fd_, &count, sizeof count);
        std::lock_guard lock(mutex_);
        children.insert(children.end(), incoming_.begin(), incoming_.end());
        incoming_.clear();
      }
      std::erase_if(children, [this](int pidfd) {
        if (!reaped(pidfd)) return false;
        ::close(pidfd);
        --waiting_;
        return true;
      });
    }
  }

  const int wake_fd_;
  std::mutex mutex_;
  std::vector<int> incoming_;
  std::atomic<int> waiting_{0};
};

}  // namespace

void reap_in_background(int pidfd) noexcept {
  // Exited already (the common case for a child that was not waited for
  // only by accident): reap it here, no thread needed.
  if (reaped(pidfd)) {
    ::close(pidfd);
    return;
  }
  Reaper::instance().adopt(pidfd);
}

int children_awaiting_reaper() noexcept { return Reaper::instance().waiting(); }

}  // namespace fiberloop::internal
