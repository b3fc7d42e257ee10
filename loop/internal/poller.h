// The loop's epoll instance and its eventfd: how an idle loop sleeps until
// the next deadline or event, and how another thread wakes it. poller.cc is
// the one file that includes <sys/epoll.h>.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "loop/options.h"

namespace fiberloop::internal {

struct Readiness;

// What an fd is registered with: whoever owns the fd's waiters embeds one,
// and the loop calls `ready` with each readiness report for that fd.
struct ReadinessTarget {
  void (*ready)(ReadinessTarget* self, const Readiness& r) = nullptr;
};

// One fd's readiness, as reported by Poller::wait().
struct Readiness {
  ReadinessTarget* token;  // what the fd was registered with
  bool readable;
  bool writable;
  bool hangup;  // error, hang-up or peer shutdown: both directions should retry and see it
};

class Poller {
 public:
  // Throws: std::system_error if the kernel refuses an epoll instance or eventfd.
  Poller();
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Blocks until an fd is ready, wake() is called, or `timeout` passes
  // (nullopt: no limit; zero: only look). The timeout is rounded up, never
  // down: with epoll_pwait2 to the nanosecond, else to the millisecond.
  // Returns the ready fds (valid until the next call); sets *woken when
  // wake() was called since the last wait.
  std::span<const Readiness> wait(std::optional<Duration> timeout, bool* woken);

  // Makes a blocked or the next wait() return at once. Any thread.
  void wake() noexcept;

  // Registers `fd` once, edge-triggered for input, output and hang-up.
  // Throws: std::system_error naming the fd.
  void add(int fd, ReadinessTarget* token);
  // Registers `fd`, or changes its interest, level-triggered: reported in
  // every wait while readable (`read`) or writable (`write`), as asyncio's
  // add_reader/add_writer are.
  // Throws: std::system_error naming the fd.
  void watch(int fd, ReadinessTarget* token, bool read, bool write, bool already_added);
  // Unregisters `fd` (a no-op if the kernel already forgot it).
  void remove(int fd) noexcept;

  std::uint64_t polls() const noexcept { return polls_; }
  // fds registered now (sockets, wait_readable, add_reader), the eventfd aside.
  std::size_t registered() const noexcept { return registered_; }
  Duration time_blocked() const noexcept { return blocked_; }

 private:
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  bool have_pwait2_ = true;
  std::vector<Readiness> ready_;
  std::uint64_t polls_ = 0;
  std::size_t registered_ = 0;
  Duration blocked_{};
};

}  // namespace fiberloop::internal
