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
  ReadinessTarget* target;  // what the fd was registered with
  bool readable;
  bool writable;
  bool hangup;  // error, hang-up or peer shutdown: both directions should retry and see it
};

// The directions a registration watches.
enum class Interest : std::uint8_t { kNone = 0, kRead = 1, kWrite = 2 };
constexpr Interest operator|(Interest a, Interest b) noexcept {
  return static_cast<Interest>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}
constexpr bool watches(Interest set, Interest direction) noexcept {
  return (static_cast<std::uint8_t>(set) & static_cast<std::uint8_t>(direction)) != 0;
}

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
  // Returns the ready fds (valid until the next call).
  std::span<const Readiness> wait(std::optional<Duration> timeout);

  // Makes a blocked or the next wait() return at once. Any thread.
  void wake() noexcept;

  // Registers `fd` once, edge-triggered, for both directions and hang-up
  // (io/'s sockets: they retry until EAGAIN, then wait).
  // Throws: std::system_error naming the fd.
  void add_edge_triggered(int fd, ReadinessTarget* target);
  // Registers `fd` level-triggered: reported in every wait while ready in a
  // direction of `interest`, as asyncio's add_reader/add_writer are.
  // Throws: std::system_error naming the fd.
  void add_level_triggered(int fd, ReadinessTarget* target, Interest interest);
  // Changes a level-triggered registration's interest.
  // Throws: std::system_error naming the fd.
  void modify(int fd, ReadinessTarget* target, Interest interest);
  // Unregisters `fd` (a no-op if the kernel already forgot it).
  void remove(int fd) noexcept;

  std::uint64_t polls() const noexcept { return polls_; }
  // fds registered now (sockets, wait_readable, add_reader), the eventfd aside.
  std::size_t registered() const noexcept { return registered_; }
  Duration time_blocked() const noexcept { return blocked_; }

 private:
  void control(int op, int fd, std::uint32_t events, ReadinessTarget* target, const char* what);

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  bool have_pwait2_ = true;
  std::vector<Readiness> ready_;
  std::uint64_t polls_ = 0;
  std::size_t registered_ = 0;
  Duration blocked_{};
};

}  // namespace fiberloop::internal
