// The epoll backend of the Poller: an epoll instance and an eventfd for
// wake-ups. epoll_poller.cc is the one file that includes <sys/epoll.h>.
#pragma once

#include "loop/internal/poller.h"

namespace fiberloop::internal {

class EpollPoller final : public Poller {
 public:
  // Throws: std::system_error if the kernel refuses an epoll instance or eventfd.
  EpollPoller();
  ~EpollPoller() override;

  // Waits with epoll_pwait2 (to the nanosecond), or epoll_wait (to the
  // millisecond, rounded up) on kernels without it.
  std::span<const Readiness> wait(std::optional<Duration> timeout) override;
  void wake() noexcept override;
  void add_edge_triggered(int fd, ReadinessTarget* target) override;
  void add_level_triggered(int fd, ReadinessTarget* target, Interest interest) override;
  void modify(int fd, ReadinessTarget* target, Interest interest) override;
  void remove(int fd) noexcept override;
  Backend backend() const noexcept override { return Backend::epoll; }

 private:
  void control(int op, int fd, std::uint32_t events, ReadinessTarget* target, const char* what);

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  bool have_pwait2_ = true;
};

}  // namespace fiberloop::internal
