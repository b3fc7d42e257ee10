// The reactor's state for one fd: registered once with the loop's epoll,
// edge-triggered, with one slot for a fiber waiting to read and one for a
// fiber waiting to write. The I/O loop of every socket is: try the syscall;
// on EAGAIN park in a slot until epoll reports readiness; retry.
//
// Owned by its socket object, on the heap (its address is the epoll token).
// A parked fiber waits through an IoWaiter on its own stack: close() marks
// that, so a woken fiber never touches the handle or socket again (they may
// be gone by the time it runs). We unregister before close(2), so a reused fd
// number gets a fresh handle and never wakes a fiber of the old one.
#pragma once

#include <string>

#include "loop/internal/fiber_record.h"
#include "loop/internal/loop_core.h"
#include "loop/internal/poller.h"

namespace fiberloop::internal {

struct IoWaiter {
  FiberRecord* fiber = nullptr;
  bool closed = false;  // the fd was closed while this fiber waited
};

class IoHandle : public ReadinessTarget {
 public:
  enum class Direction { kRead, kWrite };

  // Takes ownership of `fd` and registers it with the calling thread's loop.
  // Throws: std::system_error (naming the fd; the fd is closed); std::logic_error
  //         with no Loop.
  explicit IoHandle(int fd);
  // close().
  ~IoHandle() { close(); }
  IoHandle(const IoHandle&) = delete;
  IoHandle& operator=(const IoHandle&) = delete;

  int fd() const noexcept { return fd_; }

  // The fd Loop::dump() names for a fiber waiting here, when not fd():
  // wait_readable() waits on a dup of the caller's fd.
  void show_as(int fd) noexcept { shown_fd_ = fd; }

  // Parks the running fiber until the fd may be ready in `dir` (a retry may
  // still see EAGAIN). `op` names the operation for errors ("read").
  // Throws: std::system_error (EBADF) if the fd is closed while waiting;
  //         Cancelled, TimeoutError; std::logic_error if another fiber is
  //         already waiting in that direction, or outside a fiber.
  void wait(Direction dir, const char* op);

  // Unregisters the fd, wakes any waiting fibers (their wait() throws), and
  // closes it. Idempotent.
  void close() noexcept;
  bool closed() const noexcept { return fd_ < 0; }

 private:
  static void on_ready(ReadinessTarget* self, const Readiness& r);
  void wake(IoWaiter*& slot, bool closed) noexcept;

  LoopCore& loop_;
  int fd_;
  int shown_fd_ = -1;
  IoWaiter* reader_ = nullptr;
  IoWaiter* writer_ = nullptr;
};

// Throws std::system_error for errno `err`, its message starting with `what`
// (an operation and its fd or address: "connect 127.0.0.1:9").
[[noreturn]] void throw_io_error(int err, const std::string& what);

}  // namespace fiberloop::internal
