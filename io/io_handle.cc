#include "io/internal/io_handle.h"

#include "loop/internal/waiter.h"

#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace fiberloop::internal {
namespace {

Scheduler& this_loop() {
  Scheduler* scheduler = Scheduler::current();
  if (scheduler == nullptr) throw_no_loop("socket");
  return *scheduler;
}

}  // namespace

void throw_io_error(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

IoHandle::IoHandle(int fd) : loop_(&this_loop()), fd_(fd) {
  ready = &IoHandle::on_ready;
  try {
    loop_->reactor().watch(fd_, this);
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

void IoHandle::on_ready(ReadinessTarget* self, const Readiness& r) {
  auto& h = *static_cast<IoHandle*>(self);
  if (r.hangup) h.hung_up_ = true;
  if (r.readable || r.hangup) {
    h.may_be_readable_ = true;
    h.wake(h.reader_, false);
  }
  if (r.writable || r.hangup) h.wake(h.writer_, false);
}

void IoHandle::wake(IoWaiter*& slot, bool closed) noexcept {
  IoWaiter* w = slot;
  if (w == nullptr) return;
  slot = nullptr;
  w->closed = closed;
  loop_->reactor().remove_waiter();
  loop_->wake(*w->fiber);
}

void IoHandle::move_here(const char* op) {
  Scheduler& here = this_loop();
  if (fd_ < 0) return;  // closed: wait_here() says so
  if (reader_ != nullptr || writer_ != nullptr) {
    throw std::logic_error(std::string(op) + " fd " + std::to_string(fd_) +
                           ": used from another loop while a fiber of its own loop waits on it; "
                           "a stream moves to another loop only while nobody waits on it");
  }
  if (loop_ != nullptr && scheduler_is_live(loop_)) {  // its old loop lets go, on its thread
    call_on_loop(
        *loop_,
        [](void* self) noexcept {
          auto& h = *static_cast<IoHandle*>(self);
          h.loop_->reactor().unwatch(h.fd_);
        },
        this);
  }
  loop_ = &here;
  may_be_readable_ = true;  // the new registration reports afresh
  here.reactor().watch(fd_, this);
}

void IoHandle::wait_here(Direction dir, const char* op) {
  FiberRecord& self = loop_->running_fiber(op);
  if (fd_ < 0) throw_io_error(EBADF, std::string(op) + ": the socket is closed");
  IoWaiter*& slot = dir == Direction::kRead ? reader_ : writer_;
  if (slot != nullptr) {
    throw std::logic_error(std::string(op) + " fd " + std::to_string(fd_) +
                           ": another fiber is already waiting to " +
                           (dir == Direction::kRead ? "read" : "write") +
                           " on this socket; one reader and one writer at a time");
  }
  IoWaiter waiter;
  waiter.fiber = &self;
  slot = &waiter;
  loop_->reactor().add_waiter();
  try {
    loop_->park(dir == Direction::kRead ? WaitKind::kRead : WaitKind::kWrite,
                dump_fd_ >= 0 ? dump_fd_ : fd_);
  } catch (...) {
    // Interrupted: leave the slot (only if it still names us: the handle is
    // alive then, as close() would have emptied it).
    if (!waiter.closed && slot == &waiter) {
      slot = nullptr;
      loop_->reactor().remove_waiter();
    }
    throw;
  }
  if (waiter.closed)
    throw_io_error(EBADF, std::string(op) + ": the socket was closed while waiting");
}

void IoHandle::close() noexcept {
  if (fd_ < 0) return;
  if (loop_ != Scheduler::current() && scheduler_is_live(loop_)) {
    // Closed on another thread than its loop's: the loop closes it, on its
    // own thread, and wakes whoever waits on it there.
    call_on_loop(
        *loop_, [](void* self) noexcept { static_cast<IoHandle*>(self)->close_here(); }, this);
    return;
  }
  close_here();
}

void IoHandle::close_here() noexcept {
  if (fd_ < 0) return;
  if (loop_ == Scheduler::current()) loop_->reactor().unwatch(fd_);  // (else: its loop is gone)
  ::close(fd_);
  fd_ = -1;
  wake(reader_, true);
  wake(writer_, true);
}

}  // namespace fiberloop::internal
