// The loop's reactor: the poller, the fds registered with it (io/'s sockets,
// and add_reader/add_writer callbacks), and how many fibers wait on fd
// readiness. io/ registers its fds here (Scheduler::reactor()); the run loop
// polls it.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>

#include "loop/internal/poller.h"
#include "loop/options.h"

namespace fiberloop::internal {

class Callbacks;

class Reactor {
 public:
  // Throws: std::system_error if the kernel refuses the backend (make_poller).
  Reactor(Callbacks& callbacks, Backend backend)
      : callbacks_(callbacks),
        poller_(make_poller(backend)),
        operations_(poller_->has_operations()) {}
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // ---- io/ ----
  // Registers `fd`, edge-triggered in both directions; `target->ready` gets
  // each readiness report.
  // Throws: std::system_error naming the fd.
  void watch(int fd, ReadinessTarget* target) { poller_->add_edge_triggered(fd, target); }
  // Unregisters `fd`. Call before closing it, so that a reused fd number
  // never reports to the old target.
  void unwatch(int fd) noexcept { poller_->remove(fd); }
  // A fiber parks on fd readiness, or stops: while any waits, the loop polls
  // in every iteration (as asyncio does).
  void add_waiter() noexcept { ++waiters_; }
  void remove_waiter() noexcept { --waiters_; }
  // Poller::has_operations / submit / cancel: I/O handed to the kernel as a
  // whole, if the backend can. The caller counts as a waiter until the
  // completion.
  bool has_operations() const noexcept { return operations_; }
  bool submit(KernelOp& op) { return poller_->submit(op); }
  void cancel(KernelOp& op) noexcept { poller_->cancel(op); }

  // ---- Loop::add_reader / add_writer (loop/reactor.cc) ----
  // Sets (or, with `fn` null, removes) the callback run while `fd` is ready
  // in `direction`. Returns: whether one was set before.
  // Throws: std::system_error naming the call and the fd: check_pollable()'s,
  //         EEXIST for an fd this loop already watches (a fiberloop socket's).
  bool set_fd_callback(int fd, Interest direction, std::function<void()> fn);
  // Removes every such callback (a closed loop runs none).
  void drop_fd_callbacks() noexcept;

  // ---- the run loop ----
  // What keeps the loop polling: fibers parked on fds, and fd callbacks.
  std::size_t waiters() const noexcept { return waiters_; }
  // Waits for readiness (see Poller::wait) and hands each report to its target.
  void poll(std::optional<Duration> timeout);
  // Makes a blocked or the next poll() return at once. Any thread.
  void wake() noexcept { poller_->wake(); }
  const Poller& poller() const noexcept { return *poller_; }

 private:
  // An fd with add_reader/add_writer callbacks. Shared callbacks: one
  // already queued survives its removal.
  struct FdWatch : ReadinessTarget {
    Reactor* reactor = nullptr;
    std::shared_ptr<std::function<void()>> on_read;
    std::shared_ptr<std::function<void()>> on_write;
  };
  static void on_fd_watch_ready(ReadinessTarget* self, const Readiness& r);

  Callbacks& callbacks_;
  std::unique_ptr<Poller> poller_;
  bool operations_;
  std::size_t waiters_ = 0;
  std::unordered_map<int, std::unique_ptr<FdWatch>> fd_watches_;
};

// Checks that a caller's `fd` can be waited on for readiness, so that both
// backends answer alike: epoll refuses what the kernel cannot poll (regular
// files, directories, devices without poll support), where an io_uring
// poll would report it ready at once. Throws std::system_error naming
// `what` and the fd: EBADF for an fd that is not open, EPERM for one that
// epoll refuses.
void check_pollable(int fd, const char* what);

}  // namespace fiberloop::internal
