// IoHandle's turns: fibers of one loop that read (or write) the same stream
// at once take turns in arrival order; a close ends every turn.
#include "io/internal/io_handle.h"

#include <cerrno>
#include <string>

namespace fiberloop::internal {

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
  w.fiber->wait_call = op;
  try {
    while (!w.granted && handle_ != nullptr) loop.park(WaitKind::kTurn, fd);
  } catch (...) {
    if (handle_ == nullptr) throw;
    if (w.granted) {
      h.pass_turn();  // handed the turn, then interrupted: the next one's
    } else {
      w.unlink();
    }
    throw;
  }
  if (handle_ == nullptr) IoHandle::throw_closed_while_waiting(op, fd);
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
