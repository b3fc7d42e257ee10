// How an idle loop sleeps until the next deadline or fd event, and how
// another thread wakes it: the Poller interface, with two backends
// (LoopOptions::backend): epoll (epoll_poller.h) and io_uring
// (uring_poller.h). make_poller() picks one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
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

// An operation the backend hands to the kernel as a whole (io_uring's READ,
// RECV, ACCEPT...) instead of reporting readiness for it. The kernel owns
// `buffer` from submit() until `target` gets the completion
// (one report, `readable` set), with `result` filled in: what the syscall
// would have returned (bytes moved, the new fd, the poll events), or -errno.
// An operation ends exactly once, whether it completes, fails or is
// cancelled (Poller::cancel): until then its memory must stay put.
struct KernelOp {
  enum class Kind : std::uint8_t {
    kReadAt,   // pread(fd, buffer, size, offset)
    kWriteAt,  // pwrite(fd, buffer, size, offset)
    kRecv,     // recv(fd, buffer, size, 0)
    kSend,     // send(fd, buffer, size, MSG_NOSIGNAL)
    kSendMsg,  // sendmsg(fd, buffer as msghdr*, MSG_NOSIGNAL)
    kAccept,   // accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)
    kPoll,     // poll(fd, events = size): the events that occurred
  };
  // The most one operation moves, in bytes: the kernel's own limit per read
  // or write (2 GiB - 4 KiB); a larger request gets a short count, as from
  // read(2).
  static constexpr std::size_t kMaxBytes = 0x7ffff000;

  ReadinessTarget* target = nullptr;
  int fd = -1;
  Kind kind = Kind::kReadAt;
  void* buffer = nullptr;
  std::uint32_t size = 0;    // bytes (kPoll: the poll(2) events to wait for)
  std::uint64_t offset = 0;  // bytes into the file (kReadAt, kWriteAt)
  int result = 0;
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
  virtual ~Poller() = default;
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Blocks until an fd is ready, wake() is called, or `timeout` passes
  // (nullopt: no limit; zero: only look). The timeout is rounded up, never
  // down. Returns the ready fds (valid until the next call).
  // Throws: std::system_error if the kernel fails the wait.
  virtual std::span<const Readiness> wait(std::optional<Duration> timeout) = 0;

  // Makes a blocked or the next wait() return at once. Any thread.
  virtual void wake() noexcept = 0;

  // Registers `fd` once, edge-triggered, for both directions and hang-up
  // (io/'s sockets: they retry until EAGAIN, then wait). A report may be
  // spurious: the retry then sees EAGAIN again. A backend with operations
  // only notes the fd: its sockets wait through operations, and get no
  // report unasked.
  // Throws: std::system_error naming the fd.
  virtual void add_edge_triggered(int fd, ReadinessTarget* target) = 0;
  // Registers `fd` level-triggered: reported in every wait while ready in a
  // direction of `interest`, as asyncio's add_reader/add_writer are.
  // Throws: std::system_error naming the fd.
  virtual void add_level_triggered(int fd, ReadinessTarget* target, Interest interest) = 0;
  // Changes a level-triggered registration's interest.
  // Throws: std::system_error naming the fd.
  virtual void modify(int fd, ReadinessTarget* target, Interest interest) = 0;
  // Unregisters `fd` (a no-op if the kernel already forgot it): its target
  // gets no further report. Call before closing the fd.
  virtual void remove(int fd) noexcept = 0;

  // Whether submit() takes operations (io_uring). Sockets on such a backend
  // are registered without a standing readiness request: every wait is an
  // operation (kPoll when the caller needs readiness only).
  virtual bool has_operations() const noexcept { return false; }
  // Queues `op` for the kernel, submitted with the next wait(). Returns
  // false if this backend has no such operations (epoll: the caller waits
  // for readiness, or uses a worker thread for files).
  virtual bool submit(KernelOp& /*op*/) { return false; }
  // Asks the kernel, at once, to end `op` early (a submitted operation not
  // yet completed): it then completes with -ECANCELED, or with its result
  // if it finished first. Either way its one completion still comes, from
  // a later wait(). Once this returns, `op` no longer holds its fd open, so
  // a close(2) reaches the peer.
  virtual void cancel(KernelOp& /*op*/) noexcept {}

  virtual Backend backend() const noexcept = 0;
  std::uint64_t polls() const noexcept { return polls_; }
  // fds registered now (sockets, wait_readable, add_reader), the eventfd aside.
  std::size_t registered() const noexcept { return registered_; }
  Duration time_blocked() const noexcept { return blocked_; }

 protected:
  Poller() = default;

  std::vector<Readiness> ready_;
  std::uint64_t polls_ = 0;
  std::size_t registered_ = 0;
  Duration blocked_{};
};

// The poller `requested` names. Backend::automatic: FIBERLOOP_BACKEND
// ("epoll" or "io_uring") if the environment sets it, else io_uring (the
// faster here: bench/RESULTS.md); if the kernel refuses io_uring, epoll,
// said once per process on stderr with the reason (quietly epoll in a build
// without liburing, unless the environment asked for io_uring).
// Throws: std::system_error if the kernel refuses the backend that
//         `requested` names explicitly, or epoll itself.
std::unique_ptr<Poller> make_poller(Backend requested);

}  // namespace fiberloop::internal
