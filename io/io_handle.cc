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

void IoHandle::move_here(const char* op) {
  Scheduler* const current = Scheduler::current();
  if (current == nullptr) throw_no_loop(op);
  Scheduler& here = *current;
  enum class Outcome { kMoved, kRefused, kClosed, kLeftMeanwhile };
  for (;;) {
    // Closed (the wait says so), or brought here meanwhile by another fiber
    // of this loop (a reader and a writer both moving it).
    if (fd() < 0 || on_this_loop()) return;
    const Owner seen = owner();
    if (gone(seen)) {
      // Being closed from another thread (close() claimed it first): the
      // operation says so.
      if (closing_.load(std::memory_order_seq_cst)) return;
      if (!hand_to(seen, here)) continue;  // another loop took it first
      forget_abandoned_waiters();
      return;
    }
    // Its old loop lets go, on its own thread (the waiter slots and the
    // readiness state are that thread's until then), unless one of its
    // fibers waits on the fd, or the fd is on its way to yet another loop.
    // It names the new loop there too: from then on its own fibers' calls
    // are another loop's (they hold the fd), and a close that reaches it
    // follows the fd here. If the fd left that loop before the hand-over
    // ran, it is asked of the loop the fd went to.
    struct Move {
      IoHandle* handle;
      Scheduler* to;
      Outcome outcome;
    } move{this, &here, Outcome::kLeftMeanwhile};
    const Asked asked = ask_loop_if_live(
        seen.loop, seen.serial,
        [](void* arg) noexcept {
          auto& m = *static_cast<Move*>(arg);
          IoHandle& h = *m.handle;
          if (h.closed()) {
            m.outcome = Outcome::kClosed;
          } else if (!h.on_this_loop()) {
            m.outcome = Outcome::kLeftMeanwhile;
          } else if (h.reader_ != nullptr || h.writer_ != nullptr || h.turn_holder_ != nullptr ||
                     h.arriving_.load(std::memory_order_relaxed)) {
            m.outcome = Outcome::kRefused;
          } else {
            h.loop()->reactor().unwatch(h.fd());
            // (The only writer while its loop lives is that loop's thread.)
            FIBERLOOP_CHECK(h.hand_to(h.owner(), *m.to), "IoHandle::move_here: a raced hand-over");
            m.outcome = Outcome::kMoved;
          }
        },
        &move);
    if (asked != Asked::kAnswered) continue;  // its loop closed meanwhile
    switch (move.outcome) {
      case Outcome::kMoved:
      case Outcome::kClosed:
        return;
      case Outcome::kRefused:
        throw std::logic_error(std::string(op) + " " + describe() +
                               ": used from another loop while a fiber of its own loop waits on "
                               "it (or while it moves to a third); a stream moves to another "
                               "loop only while nobody waits on it");
      case Outcome::kLeftMeanwhile:
        break;
    }
  }
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

bool IoHandle::take_here(const char* op) {
  refs_.fetch_add(1, std::memory_order_relaxed);
  struct Unpin {
    IoHandle* handle;
    ~Unpin() { handle->unref(); }
  } const unpin{this};
  move_here(op);
  if (arriving_.load(std::memory_order_relaxed) && on_this_loop() && fd() >= 0) {
    // (Not when a close reached this loop since the hand-over: it found the
    // fd not yet registered here, and closed it without unregistering.)
    Scheduler& here = *loop();
    operations_ = here.reactor().has_operations();
    may_be_readable_ = true;  // the new registration reports afresh
    here.reactor().watch(fd(), this);
    arriving_.store(false, std::memory_order_relaxed);  // only now: a failed watch is tried again
  }
  // (Settled here, the owner's close must come through this loop, which
  // runs this fiber now: the unpin is not the last reference.)
  return settled_here();
}

bool IoHandle::ready_now(Direction dir) const noexcept {
  // (With kernel operations the wait asks the kernel anyway.)
  if (operations_ || fd() < 0) return false;
  pollfd p{fd(), static_cast<short>(dir == Direction::kRead ? POLLIN | POLLRDHUP : POLLOUT), 0};
  return ::poll(&p, 1, 0) > 0;
}

IoHandle::Owner IoHandle::owner() const noexcept {
  for (;;) {
    const std::uint32_t version = version_.load(std::memory_order_acquire);
    if (version % 2 == 0) {
      // (Acquire loads, not a fence, so TSan sees the order: a half the
      // writer stored after its odd version makes the re-read below see
      // that version or a later one.)
      const Owner o{loop_.load(std::memory_order_acquire),
                    loop_serial_.load(std::memory_order_acquire), version};
      if (version_.load(std::memory_order_relaxed) == version) return o;
    }
    std::this_thread::yield();  // a hand-over is writing the pair: two stores
  }
}

bool IoHandle::gone(const Owner& o) noexcept {
  return o.loop == nullptr || !scheduler_is_live(o.loop, o.serial);
}

bool IoHandle::hand_to(const Owner& seen, Scheduler& to) noexcept {
  std::uint32_t version = seen.version;
  if (!version_.compare_exchange_strong(version, version + 1, std::memory_order_acquire)) {
    return false;
  }
  // (Release stores of the pair, after the odd version: a reader that sees
  // a new half sees that version.)
  arriving_.store(true, std::memory_order_relaxed);  // until take_here() registers it
  loop_serial_.store(to.serial(), std::memory_order_release);
  loop_.store(&to, std::memory_order_release);  // (after arriving_: see loop())
  version_.store(version + 2, std::memory_order_release);
  return true;
}

IoHandle::OrphanClose IoHandle::claim_orphan_for_close(const Owner& seen) noexcept {
  std::uint32_t version = seen.version;
  if (!version_.compare_exchange_strong(version, version + 1, std::memory_order_acquire)) {
    return OrphanClose::kRaced;
  }
  const bool first = !closing_.exchange(true, std::memory_order_seq_cst);
  if (first) loop_.store(nullptr, std::memory_order_release);  // (as in hand_to)
  version_.store(version + 2, std::memory_order_release);
  return first ? OrphanClose::kClaimed : OrphanClose::kAlreadyClosing;
}

void IoHandle::settle_here(const char* op) {
  // Closed, or being closed by another thread as an orphan.
  if (!take_here(op)) throw_closed(op);
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
  try {
    loop()->park(dir == Direction::kRead ? WaitKind::kRead : WaitKind::kWrite,
                 dump_fd_ >= 0 ? dump_fd_ : fd());
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
  if (waiter.closed)
    throw_io_error(EBADF, std::string(op) + ": the socket was closed while waiting");
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
  if (loop.park_waiter(kNever, kind, detail) != Scheduler::ParkEnd::kWoken || !waiter.done) {
    // Interrupted (or closed, which cancelled it): the kernel still owns
    // the operation's memory, on this stack. Cancel it and wait, whatever
    // else comes, for its one completion.
    if (!waiter.done) loop.reactor().cancel(op);
    while (!waiter.done) (void)loop.park_uninterruptible(kind);
  }
  if (waiter.closed) {
    // close() emptied the slot. A connection accepted meanwhile is closed
    // too: nobody will receive it.
    if (op.kind == KernelOp::Kind::kAccept && op.result >= 0) ::close(op.result);
    throw_io_error(EBADF, std::string(name) + ": the socket was closed while waiting");
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

}  // namespace fiberloop::internal

namespace fiberloop::internal {

IoHandle::ForeignCall::ForeignCall(IoHandle& handle, const char* op) : handle_(handle) {
  handle.foreign_calls_.fetch_add(1, std::memory_order_seq_cst);
  fd = handle.fd();
  if (handle.closing_.load(std::memory_order_seq_cst) || fd < 0) {
    std::string what = handle.closed_what(op);  // first: once let go of, it may be freed
    handle.foreign_calls_.fetch_sub(1, std::memory_order_release);
    throw_io_error(EBADF, what);
  }
}

void IoHandle::throw_closed(const char* op) { internal::throw_closed(op); }

std::string IoHandle::closed_what(const char* op) const {
  return std::string(op) + (label_.empty() ? "" : " " + label_) + ": the socket is closed";
}

void IoHandle::fail_closed(const char* op) const { throw_io_error(EBADF, closed_what(op)); }

// GCC 12 warns (-Wdangling-pointer, with optimization) that the queue keeps
// the address of the local `w`: it cannot see that whoever pops `w` (the
// turn's passing, a close) takes it out of the queue. Every way out of this
// constructor leaves `w` out of it: popped by them, or unlinked here.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
IoHandle::Turn::Turn(IoHandle& h, const char* op) : handle_(&h) {
  if (Scheduler::current() == nullptr) {
    handle_ = nullptr;  // a plain thread: its wait says why it cannot
    return;
  }
  // Another loop's fd moves here first (refused while a turn is held there).
  if (!h.settled_here()) h.settle_here(op);
  if (h.turn_holder_ == nullptr) {
    h.turn_holder_ = this;
    return;
  }
  Scheduler& loop = *h.loop();
  TurnWaiter w;
  w.turn = this;
  w.fiber = &loop.running_fiber(op);
  h.turn_queue_.push_back(w);
  const int fd = h.dump_fd_ >= 0 ? h.dump_fd_ : h.fd();
  // A close (end_turns) empties handle_, queued or handed the turn: from
  // then on the handle may be gone.
  try {
    while (!w.granted && handle_ != nullptr) loop.park(WaitKind::kRead, fd);
  } catch (...) {
    if (handle_ == nullptr) throw;
    if (w.granted) {
      h.pass_turn();  // handed the turn, then interrupted: the next one's
    } else {
      w.unlink();
    }
    throw;
  }
  if (handle_ == nullptr) {
    throw_io_error(EBADF, std::string(op) + ": the socket was closed while waiting");
  }
}
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif

IoHandle::Turn::~Turn() {
  if (handle_ != nullptr) handle_->pass_turn();
}

void IoHandle::pass_turn() noexcept {
  if (turn_queue_.empty()) {
    turn_holder_ = nullptr;
    return;
  }
  TurnWaiter& next = turn_queue_.pop_front();
  next.granted = true;
  turn_holder_ = next.turn;
  loop()->wake(*next.fiber);
}

void IoHandle::forget_abandoned_waiters() noexcept {
  reader_ = writer_ = nullptr;
  turn_holder_ = nullptr;
  while (!turn_queue_.empty()) (void)turn_queue_.pop_front();
}

void IoHandle::end_turns() noexcept {
  if (turn_holder_ != nullptr) turn_holder_->handle_ = nullptr;
  turn_holder_ = nullptr;
  while (!turn_queue_.empty()) {
    TurnWaiter& w = turn_queue_.pop_front();
    w.turn->handle_ = nullptr;
    loop()->wake(*w.fiber);
  }
}

}  // namespace fiberloop::internal
