#include "io/internal/reaper.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <mutex>
#include <new>
#include <thread>
#include <utility>
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

// Reaps one child on a thread of its own: when the reaper has no thread.
void reap_on_a_thread(int pidfd, int pid) noexcept {
  try {
    start_own_thread("a child's reaper", "fl-reaper", [pidfd] {
      reaped(pidfd, /*block=*/true);
      ::close(pidfd);
    }).detach();
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "fiberloop: cannot reap child pid %d in the background (%s): it stays a zombie "
                 "once it exits, until this process ends\n",
                 pid, e.what());
    ::close(pidfd);
  }
}

// The process's reaper: one thread that polls the pidfds of the children
// handed to it. A fork()'s child makes its own at first use: the parent's
// thread is not in it (and its pidfds, of the parent's children, are closed).
class Reaper {
 public:
  static Reaper& instance() {
    std::lock_guard lock(creation_mutex_);
    if (current_ == nullptr) current_ = new Reaper;  // never destroyed: it may poll at exit
    return *current_;
  }

  // In a fork()'s child, where no other thread runs: the parent's reaper
  // (and its creation lock, perhaps held at the fork) is left behind, its fds
  // closed when its lock was free (a few leak if it was taken just then).
  // Allocates nothing.
  static void forget_after_fork() noexcept {
    new (&creation_mutex_) std::mutex;
    Reaper* old = std::exchange(current_, nullptr);
    if (old == nullptr || !old->mutex_.try_lock()) return;
    if (old->wake_fd_ >= 0) ::close(old->wake_fd_);
    for (int fd : old->incoming_) ::close(fd);
    for (int fd : old->children_) ::close(fd);
  }

  void adopt(int pidfd, int pid) noexcept {
    if (wake_fd_ < 0) return reap_on_a_thread(pidfd, pid);  // (its failure was said)
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
    try {
      start_own_thread("the child reaper", "fl-reaper", [this] { run(); }).detach();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fiberloop: %s (a thread per child instead)\n", e.what());
      ::close(std::exchange(wake_fd_, -1));
    }
  }

  void run() {
    std::vector<pollfd> fds;
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
        for (int fd : children_) fds.push_back(pollfd{fd, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), -1) < 0) continue;  // EINTR
      std::lock_guard lock(mutex_);
      if (fds[0].revents != 0) {
        std::uint64_t count;
        [[maybe_unused]] ssize_t n = ::read(wake_fd_, &count, sizeof count);
        children_.insert(children_.end(), incoming_.begin(), incoming_.end());
        incoming_.clear();
      }
      std::erase_if(children_, [this](int pidfd) {
        if (!reaped(pidfd)) return false;
        ::close(pidfd);
        --waiting_;
        return true;
      });
    }
  }

  // Constant-initialized: usable before any dynamic initialization.
  static constinit inline std::mutex creation_mutex_;
  static constinit inline Reaper* current_ = nullptr;

  int wake_fd_;
  std::mutex mutex_;           // guards incoming_ and children_
  std::vector<int> incoming_;  // handed over, not yet polled
  std::vector<int> children_;  // polled by the thread
  std::atomic<int> waiting_{0};
};

// Registered as the library loads, before any thread of its own exists (a
// lazy registration could be under way in another thread at a fork).
[[maybe_unused]] const int reaper_fork_handled =
    ::pthread_atfork(nullptr, nullptr, &Reaper::forget_after_fork);

}  // namespace

void reap_in_background(int pidfd, int pid) noexcept {
  // Exited already (the common case for a child that was not waited for
  // only by accident): reap it here, no thread needed.
  if (reaped(pidfd)) {
    ::close(pidfd);
    return;
  }
  Reaper* reaper = nullptr;
  try {
    reaper = &Reaper::instance();
  } catch (const std::exception& e) {  // (no memory for it)
    std::fprintf(stderr, "fiberloop: cannot make the child reaper: %s\n", e.what());
  }
  if (reaper != nullptr) {
    reaper->adopt(pidfd, pid);
  } else {
    reap_on_a_thread(pidfd, pid);
  }
}

int children_awaiting_reaper() noexcept { return Reaper::instance().waiting(); }

}  // namespace fiberloop::internal
