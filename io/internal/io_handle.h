// The reactor's state for one fd, and the one I/O loop every socket, pipe
// and signal operation goes through: try the syscall; on EAGAIN park until
// the reactor reports readiness; retry. The fd is registered once with the
// loop's reactor, edge-triggered, with one slot for a fiber waiting to read
// and one for a fiber waiting to write.
//
// On a backend with kernel operations (io_uring) nothing reports readiness
// unasked: a read, write or accept that would wait is handed to the
// kernel whole (RECV into the caller's buffer, SEND, SENDMSG, ACCEPT), and
// any other wait is a one-shot POLL operation, each completing into the fiber
// that waits for it (perform()).
//
// Owned by its socket object, on the heap (its address is the reactor's
// target). A parked fiber waits through an IoWaiter on its own stack:
// close() marks that, so a woken fiber never touches the handle or socket
// again (they may be gone by the time it runs). The fd is unregistered, and
// its operations cancelled, before close(2), so a reused fd number gets a
// fresh handle and never wakes a fiber of the old one.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <string>

#include "io/internal/socket.h"  // throw_io_error
#include "loop/internal/fiber_record.h"
#include "loop/internal/intrusive_list.h"
#include "loop/internal/reactor.h"
#include "loop/internal/scheduler.h"

namespace fiberloop::internal {

// A fiber waiting on the fd: for readiness (epoll), or for its operation's
// completion (`op`, io_uring), which is the target the kernel reports to.
struct IoWaiter : ReadinessTarget {
  Scheduler* loop = nullptr;
  FiberRecord* fiber = nullptr;
  KernelOp* op = nullptr;  // null: a readiness wait
  bool closed = false;     // the fd was closed while this fiber waited
  // `op` has completed (the kernel is done with its memory); for a readiness
  // wait, a report woke the fiber (it leaves its slot itself when it runs).
  bool done = false;

  // The `ready` of an operation's waiter: marks it done, uncounts it as a
  // waiter of its loop, and wakes its fiber.
  static void complete(ReadinessTarget* self, const Readiness& r);
};

class IoHandle : public ReadinessTarget {
 public:
  enum class Direction { kRead, kWrite };

  // Takes ownership of `fd` and registers it with the calling thread's loop.
  // Throws: std::system_error (naming the fd; the fd is closed); std::logic_error
  //         with no Loop.
  explicit IoHandle(int fd);
  // close(). For a handle on the stack (one fiber's own wait); a heap
  // handle goes through Release.
  ~IoHandle();
  IoHandle(const IoHandle&) = delete;
  IoHandle& operator=(const IoHandle&) = delete;

  // The owner's end of a heap handle (Socket's deleter): closes it, and frees
  // it unless a fiber of another loop is in the middle of moving it to its
  // own loop (take_here pins it): then that fiber frees it when done. So a
  // stream destroyed on its loop while a fiber of another loop waits for
  // its hand-over leaves that fiber memory to read, and an EBADF.
  struct Release {
    void operator()(IoHandle* handle) const noexcept;
  };

  int fd() const noexcept { return fd_.load(std::memory_order_relaxed); }
  // The fd Loop::dump() names for a fiber waiting here, when not fd():
  // wait_readable() waits on a dup of the caller's fd.
  void set_dump_fd(int fd) noexcept { dump_fd_ = fd; }
  // What errors call the fd besides its number ("stdin of pid 7 (cat)", a
  // Process's pipe). Set once, before the handle is shared.
  void set_label(std::string label) noexcept { label_ = std::move(label); }
  // For errors: "fd 7", or "stdin of pid 7 (cat) (fd 7)".
  std::string describe() const;
  // Throws std::system_error (EBADF) for `op` on the closed fd, naming the
  // label if there is one (closed_what(), its message).
  [[noreturn]] void fail_closed(const char* op) const;
  std::string closed_what(const char* op) const;

  // Runs `attempt(fd)` (a syscall on the fd: a result >= 0, or -1 with
  // errno set), through with_fd(), until it succeeds. EINTR, and
  // `also_retry` if given, retry at once. EAGAIN on another loop's fd moves
  // it to the caller's loop and tries again; on its own loop, waits until
  // the fd may be ready in `dir` and retries, or, with `as_op` (the same
  // syscall as a kernel operation) on a backend that has operations, hands
  // that to the kernel and returns its result. With `wait_first`, waits
  // before the first attempt (the readiness cache says it would see
  // EAGAIN). Any other errno goes to `fail(errno)`, which throws. `op`
  // names the operation in errors ("read"), and in Loop::dump() while the
  // fiber waits: a string literal (so for every `op` below).
  // Throws: what `fail` throws; what wait() and perform() throw.
  template <class Attempt, class Fail>
  auto retry(Direction dir, const char* op, Attempt attempt, Fail fail, int also_retry = 0,
             KernelOp* as_op = nullptr, bool wait_first = false) -> decltype(attempt(0)) {
    for (bool try_now = !wait_first;; try_now = true) {
      int err = EAGAIN;
      if (try_now) {
        const auto result = with_fd(op, attempt);
        if (result >= 0) return result;
        err = errno;
      }
      if (err == EAGAIN || err == EWOULDBLOCK) {
        if (!settled_here()) [[unlikely]] {
          // Another loop's fd: it moves here, and the attempt is made again
          // (what it saw is stale; the new registration's first report may
          // go to another fiber of this loop).
          if (!take_here(op)) throw_closed(op);  // (the handle may be gone)
          continue;
        }
        if (as_op == nullptr || !operations_) {
          wait_here(dir, op);
          continue;
        }
        const int result = perform(dir, *as_op, op);
        if (result >= 0) return result;
        err = -result;
        if (err == EAGAIN || err == EWOULDBLOCK) continue;
      }
      if (err != EINTR && err != also_retry) fail(err);
    }
  }

  // Hands `op` (its fd set here) to the kernel and parks until it completes;
  // returns its result (>= 0, or -errno). On an interrupt the operation is
  // cancelled and waited for: if it completed anyway, its result is
  // returned and the interrupt comes at the next suspension point (no byte
  // read, connection accepted or byte sent is lost); else the interrupt is
  // thrown. Closed while waiting: throws EBADF even if the operation had
  // completed (the socket is gone; a connection it accepted is closed).
  // Only on a loop with kernel operations (io_uring).
  // Throws: as wait().
  int perform(Direction dir, KernelOp& op, const char* name);

  // Parks the running fiber until the fd may be ready in `dir` (a retry may
  // still see EAGAIN). `op` names the operation for errors ("read"). From a
  // fiber of another loop than the one the fd is registered with, the fd
  // moves to that loop first (a stream handed to another loop), and the
  // wait returns at once if the fd is ready by then (what the caller saw
  // before the move is stale, and the new registration's first report may
  // have gone to another fiber of that loop).
  // Throws: std::system_error (EBADF) if the fd is closed while waiting;
  //         Cancelled, TimeoutError; std::logic_error if another fiber is
  //         already waiting in that direction, outside a fiber, or when it
  //         must move while a fiber of its old loop waits on it.
  void wait(Direction dir, const char* op) {
    if (!settled_here()) [[unlikely]] {
      settle_here(op);
      if (ready_now(dir)) return;
    }
    wait_here(dir, op);
  }

  // Whether the fd belongs to the calling thread's loop (registered with it,
  // or arriving there: settled_here() says registered). Only then may an
  // operation read or write the handle's state (the readiness cache): the
  // loop it belongs to writes it on its own thread.
  // From another loop an operation makes its syscall first and touches the
  // state only once a wait has moved the fd (wait(), perform()).
  bool on_this_loop() const noexcept {
    const Scheduler* here = Scheduler::current();
    // (Never true by a torn read of the pair while the fd moves: a loop's
    // address with another loop's serial matches no loop.)
    return here == loop() && here != nullptr &&
           here->serial() == loop_serial_.load(std::memory_order_relaxed);
  }

  // A fiber's turn at accepting on a listening fd (Go's read lock on a
  // poll.FD): several fibers of the fd's loop may accept on one listener.
  // One at a time makes the syscall and waits; the others queue, in order,
  // and each tries accept4 first when its turn comes (an edge-triggered
  // registration reports pending connections once, to the fiber then
  // waiting). A fiber of another loop moves the fd to its own loop first,
  // which is refused while a turn is held where it is.
  // Throws: Cancelled, TimeoutError while queued; std::system_error (EBADF)
  //         if the fd is closed (or destroyed) meanwhile; std::logic_error
  //         as move_here().
  class Turn {
   public:
    Turn(IoHandle& handle, const char* op);
    // Passes the turn to the next queued fiber (unless the fd was closed:
    // then the handle may be gone).
    ~Turn();
    Turn(const Turn&) = delete;
    Turn& operator=(const Turn&) = delete;

   private:
    friend class IoHandle;
    IoHandle* handle_;  // null: no turn held, or the fd closed since (end_turns)
  };

  // Unregisters the fd, wakes any waiting fibers (their wait() throws), and
  // closes it; from another thread than its loop's, on that loop (the caller
  // waits for it). Idempotent.
  void close() noexcept;
  bool closed() const noexcept { return fd() < 0; }

  // Runs `call(fd)`, a system call on the fd that does not wait, where a
  // close cannot pull the fd from under it: on the fd's own loop that is so
  // anyway (the close runs there); from another thread the call holds the
  // fd, and close waits it out (Go's poll.FD count), so a number the
  // process reuses meanwhile is never the one called on. Returns: what
  // `call` returns. Throws: std::system_error (EBADF) naming `op` if closed.
  template <class Call>
  auto with_fd(const char* op, Call call) -> decltype(call(0)) {
    if (on_this_loop()) [[likely]] {
      const int fd_now = fd();
      if (fd_now < 0) [[unlikely]]
        fail_closed(op);
      return call(fd_now);
    }
    const ForeignCall hold(*this, op);
    return call(hold.fd);
  }

  // The readiness cache of a stream's reads: a read that took less than it
  // asked for emptied the socket, and the edge-triggered registration
  // reports whatever arrives after it, so the next read may park at once
  // instead of making a read(2) that sees EAGAIN. Any readable or hang-up
  // report sets it again. (Streams only: a datagram read is short anyway.)
  // Once a hang-up or error has been reported the cache is off: the end of
  // the stream may already be queued behind the data a short read took, and
  // no further report would come for it.
  bool may_be_readable() const noexcept { return may_be_readable_; }
  void drained() noexcept { may_be_readable_ = hung_up_; }
  // A read filled its buffer: more may be queued (on io_uring, where no
  // report comes unasked, the next read tries read(2) before a RECV).
  void filled() noexcept { may_be_readable_ = true; }

 private:
  // A foreign thread's hold on the fd for one call. Throws: as with_fd().
  struct ForeignCall {
    ForeignCall(IoHandle& handle, const char* op);
    ~ForeignCall() { handle_.foreign_calls_.fetch_sub(1, std::memory_order_release); }
    ForeignCall(const ForeignCall&) = delete;
    ForeignCall& operator=(const ForeignCall&) = delete;
    IoHandle& handle_;
    int fd = -1;
  };
  [[noreturn]] static void throw_closed(const char* op);
  // EBADF for `op`, parked on fd `fd` when another fiber closed it.
  [[noreturn]] static void throw_closed_while_waiting(const char* op, std::int64_t fd);

  // Whether the fd is this loop's and registered with it: then wait_here()
  // and perform() may use its state.
  bool settled_here() const noexcept {
    return on_this_loop() && !arriving_.load(std::memory_order_relaxed);
  }
  // Makes the fd this loop's and registered with it: moves it here
  // (move_here), and registers it if it has not been yet (by the fiber
  // that moved it, or by another fiber of this loop that needs it first).
  // The handle is pinned meanwhile (refs_), since its owner may destroy it
  // on the old loop while this fiber waits for that loop's answer.
  // Returns: whether the fd is settled here; false if a close came first,
  //          and then the handle may be gone: the caller throws EBADF
  //          without touching it.
  // Throws: as move_here(); what the reactor's watch() throws (the next
  //         wait tries again).
  [[nodiscard]] bool take_here(const char* op);
  // take_here(), and throws std::system_error (EBADF) naming `op` if the
  // fd is closed, or being closed as an orphan, instead of settled here
  // (not touching the handle then).
  void settle_here(const char* op);
  // Drops a reference (the owner's, or a pin); the last one frees the handle.
  void unref() noexcept;
  // After a move: whether poll(2) says the fd is ready in `dir` now.
  bool ready_now(Direction dir) const noexcept;
  void wait_here(Direction dir, const char* op);
  // The slot of a fiber waiting in `dir`, checked empty.
  // Throws: std::logic_error naming the fd if another fiber waits there.
  IoWaiter*& claim(Direction dir, const char* op);
  // Names the calling thread's loop as the fd's instead of its old one
  // (unregistered there; take_here() registers it), unless it is this
  // loop's already. Throws: std::logic_error if a fiber of the old loop
  // waits on it, or it is on its way to a third loop.
  void move_here(const char* op);
  void close_here() noexcept;
  // The next queued fiber's turn, or none.
  void pass_turn() noexcept;
  // Ends every turn: the holder's Turn forgets the handle, queued fibers
  // wake to throw EBADF.
  void end_turns() noexcept;
  // Its loop is gone, and with it every fiber that waited here (abandoned,
  // never resumed, their stacks leaked): nothing to wake, no loop to tell.
  void forget_abandoned_waiters() noexcept;
  static void on_ready(ReadinessTarget* self, const Readiness& r);
  void wake(IoWaiter*& slot, bool closed) noexcept;

  // (Acquire: a thread that sees its own loop named here sees arriving_
  // as the old loop left it.)
  Scheduler* loop() const noexcept { return loop_.load(std::memory_order_acquire); }
  // The loop the fd belongs to and its serial, read as one pair (a
  // seqlock: never one loop's address with another's serial).
  struct Owner {
    Scheduler* loop;
    std::uint64_t serial;
    std::uint32_t version;
  };
  Owner owner() const noexcept;
  // Whether the owner is gone: its loop destroyed (a later loop may have
  // its address, never its serial).
  static bool gone(const Owner& o) noexcept;
  // Names `to` as the loop the fd belongs to, arriving (not yet registered
  // there), if the pair is still as `seen` read it. Called on the old
  // loop's thread (move_here: while that loop lives nobody else writes the
  // pair), or, once the old loop is gone, on the thread of a loop taking
  // the orphan (racing others, and claim_orphan_for_close: one wins).
  // Returns: whether it did.
  bool hand_to(const Owner& seen, Scheduler& to) noexcept;
  // A close of an orphan (its loop gone) claims it, if the pair is still
  // as `seen` read it: sets closing_ (no loop takes it, no call starts)
  // and names no loop. kAlreadyClosing: another close claimed it first.
  enum class OrphanClose : std::uint8_t { kClaimed, kRaced, kAlreadyClosing };
  OrphanClose claim_orphan_for_close(const Owner& seen) noexcept;

  // The loop the fd is registered with, and its serial (a later loop may
  // take its address). Written by hand_to() and claim_orphan_for_close()
  // under version_ (odd while they write), read by any thread
  // (on_this_loop, owner()).
  std::atomic<Scheduler*> loop_;
  std::atomic<std::uint64_t> loop_serial_;
  std::atomic<std::uint32_t> version_{0};
  std::atomic<int> fd_;  // -1 once closed; written on loop_'s thread only
  // Calls made on the fd from other threads now (with_fd), and whether a
  // close has begun (then no new one starts).
  std::atomic<std::uint32_t> foreign_calls_{0};
  std::atomic<bool> closing_{false};
  // Named as this loop's by the old loop, and not yet registered with it
  // (from hand_to() to take_here()'s watch()): a second move is refused, a
  // close does not unregister, and the new loop's first wait registers it.
  // Written by the old loop's thread (before hand_to() publishes the new
  // loop), then only by the new loop's.
  std::atomic<bool> arriving_{false};
  // The owner's reference (a heap handle) and the pins of fibers moving
  // the fd here (take_here): the last to let go frees it (unref).
  std::atomic<std::uint32_t> refs_{1};
  bool operations_;  // loop_'s backend has kernel operations
  int dump_fd_ = -1;
  std::string label_;
  IoWaiter* reader_ = nullptr;
  IoWaiter* writer_ = nullptr;
  // A fiber queued for its turn (Turn).
  struct TurnWaiter : ListHook<> {
    Turn* turn = nullptr;
    FiberRecord* fiber = nullptr;
    bool granted = false;
  };
  Turn* turn_holder_ = nullptr;  // null: nobody's turn
  IntrusiveList<TurnWaiter> turn_queue_;
  // False at first: a fresh connection's first read waits instead of making
  // a read(2) that sees EAGAIN (one per accepted connection whose request
  // has not arrived yet): on epoll, registering the fd reports its current
  // state; on io_uring, the wait is a RECV that returns what is there.
  bool may_be_readable_ = false;
  bool hung_up_ = false;  // a hang-up or error was reported: no caching
};

}  // namespace fiberloop::internal
