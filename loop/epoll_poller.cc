#include "loop/internal/epoll_poller.h"

#include "loop/internal/deadline.h"  // poll_timeout_ms

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <system_error>

namespace fiberloop::internal {
namespace {

constexpr int kMaxEvents = 256;

// `err`: errno, read by the caller before it builds `what` (building the
// message may allocate, and an allocation may change errno).
[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

}  // namespace

EpollPoller::EpollPoller() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) {
    const int err = errno;  // before the message's string is made
    throw_errno(err, "fiberloop: epoll_create1");
  }
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    const int err = errno;
    ::close(epoll_fd_);
    throw_errno(err, "fiberloop: eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the wake-up eventfd is the one fd with a null token
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    const int err = errno;
    ::close(wake_fd_);
    ::close(epoll_fd_);
    throw_errno(err, "fiberloop: epoll_ctl add eventfd");
  }
  ready_.reserve(kMaxEvents);
}

EpollPoller::~EpollPoller() {
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

void EpollPoller::wake() noexcept {
  const std::uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop will wake anyway.
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void EpollPoller::control(int op, int fd, std::uint32_t events, ReadinessTarget* target,
                          const char* what) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = target;
  if (::epoll_ctl(epoll_fd_, op, fd, &ev) != 0) {
    const int err = errno;
    throw_errno(err, std::string("epoll_ctl ") + what + " fd " + std::to_string(fd));
  }
}

void EpollPoller::add_edge_triggered(int fd, ReadinessTarget* target) {
  control(EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, target, "add");
  ++registered_;
}

namespace {
std::uint32_t level_events(Interest interest) {
  return (watches(interest, Interest::kRead) ? EPOLLIN : 0u) |
         (watches(interest, Interest::kWrite) ? EPOLLOUT : 0u);
}
}  // namespace

void EpollPoller::add_level_triggered(int fd, ReadinessTarget* target, Interest interest) {
  control(EPOLL_CTL_ADD, fd, level_events(interest), target, "add");
  ++registered_;
}

void EpollPoller::modify(int fd, ReadinessTarget* target, Interest interest) {
  control(EPOLL_CTL_MOD, fd, level_events(interest), target, "modify");
}

void EpollPoller::remove(int fd) noexcept {
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  --registered_;
}

std::span<const Readiness> EpollPoller::wait(std::optional<Duration> timeout) {
  epoll_event events[kMaxEvents];
  // Only waits that may block are timed: the zero-timeout polls of a busy
  // loop (every iteration while fibers wait on fds) skip the clock.
  const bool may_block = !timeout || *timeout > Duration::zero();
  const TimePoint start = may_block ? Clock::now() : TimePoint{};
  int n;
  for (;;) {
    if (have_pwait2_) {
      timespec ts{};
      timespec* tsp = nullptr;
      if (timeout) {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*timeout).count();
        const long long positive = ns > 0 ? ns : 0;
        ts.tv_sec = static_cast<time_t>(positive / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(positive % 1'000'000'000);
        tsp = &ts;
      }
      n = ::epoll_pwait2(epoll_fd_, events, kMaxEvents, tsp, nullptr);
      if (n < 0 && errno == ENOSYS) {
        have_pwait2_ = false;
        continue;
      }
    } else {
      // Rounded up, so that a wait never ends before its deadline; a wait
      // past 24.8 days ends early and the loop simply waits again.
      n = ::epoll_wait(epoll_fd_, events, kMaxEvents, timeout ? poll_timeout_ms(*timeout) : -1);
    }
    if (n >= 0) break;
    if (const int err = errno; err != EINTR) throw_errno(err, "fiberloop: epoll_wait");
  }
  ++polls_;
  if (may_block) blocked_ += Clock::now() - start;
  ready_.clear();
  for (int i = 0; i < n; ++i) {
    const epoll_event& ev = events[i];
    if (ev.data.ptr == nullptr) {
      std::uint64_t count;
      while (::read(wake_fd_, &count, sizeof count) > 0) {
      }
      continue;
    }
    const bool hangup = (ev.events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0;
    ready_.push_back(Readiness{static_cast<ReadinessTarget*>(ev.data.ptr),
                               (ev.events & EPOLLIN) != 0, (ev.events & EPOLLOUT) != 0, hangup});
  }
  return ready_;
}

}  // namespace fiberloop::internal
