// IoHandle between loops: the owner (loop and serial, written together
// under a version), the hand-over of a stream to the loop of the fiber that
// uses it (asked of its old loop, which lets go on its own thread), an
// orphan's close, and the calls other threads make on the fd meanwhile.
#include "io/internal/io_handle.h"

#include "loop/internal/waiter.h"

#include <cerrno>
#include <stdexcept>
#include <string>
#include <thread>

namespace fiberloop::internal {

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

IoHandle::ForeignCall::ForeignCall(IoHandle& handle, const char* op) : handle_(handle) {
  handle.foreign_calls_.fetch_add(1, std::memory_order_seq_cst);
  fd = handle.fd();
  if (handle.closing_.load(std::memory_order_seq_cst) || fd < 0) {
    std::string what = handle.closed_what(op);  // first: once let go of, it may be freed
    handle.foreign_calls_.fetch_sub(1, std::memory_order_release);
    throw_io_error(EBADF, what);
  }
}

}  // namespace fiberloop::internal
