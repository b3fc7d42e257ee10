// IoHandle on its own loop: registration, readiness, the waits and
// operations of its fibers, and close. Moving between loops is in
// io_handle_move.cc, the turns of concurrent callers in io_turn.cc.
#include "io/internal/io_handle.h"

#include "loop/internal/waiter.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace fiberloop::internal {
namespace {

[[noreturn]] void throw_closed(const char* op) {
  throw_io_error(EBADF, std::string(op) + ": the socket is closed");
}

// The loop of the thread that hands `fd` over; without one, closes `fd`
// (the handle owned it from the call on) and throws.
Scheduler& loop_taking(int fd) {
  Scheduler* scheduler = Scheduler::current();
  if (scheduler == nullptr) [[unlikely]] {
    ::close(fd);
    throw_no_loop("socket");
  }
  return *scheduler;
}

}  // namespace

void throw_io_error(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

std::string IoHandle::describe() const {
  const std::string number = "fd " + std::to_string(fd());
  return label_.empty() ? number : label_ + " (" + number + ")";
}

IoHandle::IoHandle(int fd)
    : loop_(&loop_taking(fd)),
      loop_serial_(loop_.load(std::memory_order_relaxed)->serial()),
      fd_(fd),
      operations_(loop()->reactor().has_operations()) {
  ready = &IoHandle::on_ready;
  try {
    loop()->reactor().watch(fd, this);
  } catch (...) {
    ::close(fd);
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
  if (closed) {
    // The fiber may have been woken by a report already and not yet run:
    // it must still learn that the fd is gone (its number may be reused).
    w->closed = true;
    slot = nullptr;
  }
  if (w->done) return;
  // A readiness report leaves the waiter in its slot until its fiber runs
  // and takes it out, so that a close in between still reaches it.
  w->done = true;
  loop()->reactor().remove_waiter();
  loop()->wake(*w->fiber);
}

IoHandle::~IoHandle() {
  FIBERLOOP_CHECK(refs_.load(std::memory_order_relaxed) <= 1,
                  "an IoHandle destroyed directly while a fiber of another loop pins it");
  close();
}

void IoHandle::Release::operator()(IoHandle* handle) const noexcept {
  handle->close();
  handle->unref();
}

void IoHandle::unref() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  refs_.store(1, std::memory_order_relaxed);  // (~IoHandle's check: nobody else holds it)
  delete this;
}

bool IoHandle::ready_now(Direction dir) const noexcept {
  // (With kernel operations the wait asks the kernel anyway.)
  if (operations_ || fd() < 0) return false;
  pollfd p{fd(), static_cast<short>(dir == Direction::kRead ? POLLIN | POLLRDHUP : POLLOUT), 0};
  return ::poll(&p, 1, 0) > 0;
}

IoWaiter*& IoHandle::claim(Direction dir, const char* op) {
  IoWaiter*& slot = dir == Direction::kRead ? reader_ : writer_;
  if (slot != nullptr) {
    throw std::logic_error(std::string(op) + " " + describe() +
                           ": another fiber is already waiting to " +
                           (dir == Direction::kRead ? "read" : "write") +
                           " on this socket; one reader and one writer at a time");
  }
  return slot;
}

void IoHandle::wait_here(Direction dir, const char* op) {
  if (operations_) {
    // No standing registration reports readiness: ask for it once.
    KernelOp poll;
    poll.kind = KernelOp::Kind::kPoll;
    poll.size = dir == Direction::kRead ? POLLIN | POLLRDHUP : POLLOUT;
    const int events = perform(dir, poll, op);
    // (A failed poll, like a hang-up, lets the retry's syscall say why.)
    if (events < 0 || (events & (POLLERR | POLLHUP | POLLRDHUP)) != 0) hung_up_ = true;
    if (dir == Direction::kRead) may_be_readable_ = true;
    return;
  }
  // (Closed first: a move cut short by a close left the fd another loop's.)
  if (fd() < 0) fail_closed(op);
  FiberRecord& self = loop()->running_fiber(op);
  IoWaiter*& slot = claim(dir, op);
  IoWaiter waiter;
  waiter.fiber = &self;
  slot = &waiter;
  loop()->reactor().add_waiter();
  self.wait_call = op;
  const int fd_number = dump_fd_ >= 0 ? dump_fd_ : fd();
  try {
    loop()->park(dir == Direction::kRead ? WaitKind::kRead : WaitKind::kWrite, fd_number);
  } catch (...) {
    // Interrupted: leave the slot (only if it still names us: the handle is
    // alive then, as close() would have emptied it).
    if (!waiter.closed && slot == &waiter) {
      slot = nullptr;
      if (!waiter.done) loop()->reactor().remove_waiter();
    }
    throw;
  }
  // Closed while waiting, even after a readiness report: the handle may be
  // gone, and the fd number another file's.
  if (waiter.closed) throw_closed_while_waiting(op, fd_number);
  FIBERLOOP_CHECK(slot == &waiter, "IoHandle::wait_here: a woken waiter left its slot");
  slot = nullptr;
}

void IoWaiter::complete(ReadinessTarget* self, const Readiness&) {
  auto& w = *static_cast<IoWaiter*>(self);
  w.done = true;
  w.loop->reactor().remove_waiter();
  w.loop->wake(*w.fiber);
}

int IoHandle::perform(Direction dir, KernelOp& op, const char* name) {
  if (!settled_here()) [[unlikely]]
    settle_here(name);
  if (fd() < 0) fail_closed(name);
  FiberRecord& self = loop()->running_fiber(name);
  FIBERLOOP_CHECK(operations_, "IoHandle::perform on a loop without kernel operations");
  IoWaiter*& slot = claim(dir, name);
  loop()->deliver_interrupt(self);  // one already pending: the kernel never sees the operation
  IoWaiter waiter;
  waiter.ready = &IoWaiter::complete;
  waiter.loop = loop();
  waiter.fiber = &self;
  waiter.op = &op;
  op.target = &waiter;
  op.fd = fd();
  Scheduler& loop = *this->loop();  // (the handle may be gone when the fiber resumes)
  loop.reactor().submit(op);
  loop.reactor().add_waiter();
  slot = &waiter;
  const WaitKind kind = dir == Direction::kRead ? WaitKind::kRead : WaitKind::kWrite;
  const std::int64_t detail = dump_fd_ >= 0 ? dump_fd_ : fd();
  self.wait_call = name;
  if (loop.park_waiter(kNever, kind, detail) != Scheduler::ParkEnd::kWoken || !waiter.done) {
    // Interrupted (or closed, which cancelled it): the kernel still owns
    // the operation's memory, on this stack. Cancel it and wait, whatever
    // else comes, for its one completion.
    if (!waiter.done) loop.reactor().cancel(op);
    while (!waiter.done) (void)loop.park_uninterruptible(kind, detail);
  }
  if (waiter.closed) {
    // close() emptied the slot. A connection accepted meanwhile is closed
    // too: nobody will receive it.
    if (op.kind == KernelOp::Kind::kAccept && op.result >= 0) ::close(op.result);
    throw_closed_while_waiting(name, detail);
  }
  slot = nullptr;
  if (op.result == -ECANCELED) loop.deliver_interrupt(self);  // ended by the interrupt: throws
  return op.result;
}

void IoHandle::close() noexcept {
  // Closed on another thread than its loop's: the loop closes it, on its
  // own thread, and wakes whoever waits on it there (the caller waits). If
  // the fd moved to another loop before that ran, the close follows it.
  while (!closed()) {
    if (on_this_loop()) {
      close_here();
      return;
    }
    const Owner o = owner();
    if (gone(o)) {
      // An orphan: closed here, once it is claimed against a loop taking
      // it meanwhile (move_here) and against another close.
      switch (claim_orphan_for_close(o)) {
        case OrphanClose::kClaimed:
          close_here();
          return;
        case OrphanClose::kAlreadyClosing:
          while (!closed()) std::this_thread::yield();
          return;
        case OrphanClose::kRaced:
          continue;
      }
    }
    struct Close {
      IoHandle* handle;
      bool done;
    } close{this, false};
    (void)call_on_loop_if_live(
        o.loop, o.serial,
        [](void* arg) noexcept {
          auto& c = *static_cast<Close*>(arg);
          if (!c.handle->closed() && !c.handle->on_this_loop()) return;  // moved on meanwhile
          c.handle->close_here();
          c.done = true;
        },
        &close);
    if (close.done) return;
  }
}

void IoHandle::close_here() noexcept {
  if (fd() < 0) return;
  if (on_this_loop()) {
    // Operations in flight end first: they hold the file open, and a close
    // would not reach the peer. Their fibers wake at their completions.
    for (IoWaiter** slot : {&reader_, &writer_}) {
      if (*slot == nullptr || (*slot)->op == nullptr) continue;
      (*slot)->closed = true;
      loop()->reactor().cancel(*(*slot)->op);
      *slot = nullptr;
    }
    end_turns();
    // (Not while it is arriving from another loop: not registered here yet.)
    if (!arriving_.load(std::memory_order_relaxed)) loop()->reactor().unwatch(fd());
  } else {
    forget_abandoned_waiters();
  }
  // Calls other loops' fibers make on the fd end first (they hold it), and
  // none starts now: the number is not reused under them.
  closing_.store(true, std::memory_order_seq_cst);
  while (foreign_calls_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  ::close(fd());
  fd_.store(-1, std::memory_order_relaxed);
  wake(reader_, true);
  wake(writer_, true);
}

void IoHandle::throw_closed(const char* op) { internal::throw_closed(op); }

void IoHandle::throw_closed_while_waiting(const char* op, std::int64_t fd) {
  throw_io_error(EBADF, std::string(op) + " fd " + std::to_string(fd) +
                            ": the socket was closed while waiting");
}

std::string IoHandle::closed_what(const char* op) const {
  return std::string(op) + (label_.empty() ? "" : " " + label_) + ": the socket is closed";
}

void IoHandle::fail_closed(const char* op) const { throw_io_error(EBADF, closed_what(op)); }

}  // namespace fiberloop::internal
