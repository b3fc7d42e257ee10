// Channel<T>: Go's channels, between fibers of any loops and plain threads.
//
//   fiberloop::Channel<std::string> lines(16);   // buffered; Channel<T>() is unbuffered
//   spawn([&] { for (auto& l : read_lines()) lines.send(l); lines.close(); });
//   while (auto line = lines.recv()) handle(*line);
//
// Unbuffered (capacity 0): send() waits for a receiver, a rendezvous.
// Buffered: send() waits only while the buffer is full. Blocked senders and
// receivers are served first come, first served. Values may be move-only;
// if a value's move throws while it passes to or from a parked peer, both
// sides get the exception and the channel stays as it was before that
// value (a buffered receive that took its value keeps it; the sender whose
// value could not follow into the buffer gets the exception).
// close() wakes every waiter: receivers drain what is buffered and then get
// nullopt; senders get ChannelClosed. Any thread: fibers of any loop and
// plain threads (whose waits block them) may send, receive and close; used
// within one loop it takes no lock (see event.h).
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "loop/internal/scheduler.h"
#include "sync/internal/waiters.h"

namespace fiberloop {

template <class T>
class RecvCase;
template <class T>
class SendCase;

// Thrown by send() on a closed channel.
class ChannelClosed : public std::runtime_error {
 public:
  ChannelClosed() : std::runtime_error("Channel: send on a closed channel") {}
};

template <class T>
class Channel {
 public:
  // A channel holding up to `capacity` values; 0 makes it unbuffered.
  explicit Channel(std::size_t capacity = 0)
      : capacity_(capacity),
        ring_(std::make_unique<std::optional<T>[]>(capacity == 0 ? 1 : capacity)) {}
  // Closes the channel first: fibers still waiting on it wake (see close()),
  // and none of them (a select() parked on it, a waiter already
  // interrupted) touches it again: it may be destroyed while fibers of its
  // own loop wait on it.
  ~Channel() {
    internal::SyncGuard guard(home_);
    const bool shared = guard.shared();
    closed_.store(true, std::memory_order_release);
    for (auto* queue : {&receivers_, &senders_}) {
      while (!queue->empty()) {
        internal::ChannelOp& op = queue->pop_front();
        op.channel_gone = true;
        if (op.passed_by(shared)) continue;
        if (op.select != nullptr && !op.select->claim(op.case_index)) continue;
        op.complete(true);
      }
    }
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Hands `value` to a waiting receiver, or buffers it, or parks until one of
  // those can happen.
  // Throws: ChannelClosed (at once, or when the channel closes while parked);
  //         Cancelled, TimeoutError (the value was not sent); std::logic_error
  //         when it must wait on a loop's thread outside a fiber.
  // Inline, as the waits below: no function return above the switch
  // (fiber/internal/context.h).
  [[gnu::always_inline]] void send(T value) {
    internal::SyncGuard guard(home_, internal::Entry::waiting());
    if (try_send_from(value, guard.shared())) return;
    internal::ChannelOp op;
    op.value = &value;
    park(guard, senders_, op, "Channel::send");
    internal::throw_if_failed(op);
    if (op.closed) throw ChannelClosed();
  }

  // Sends if that needs no waiting. Returns: whether it sent (`value` is
  // moved from only then).
  // Throws: ChannelClosed.
  bool try_send(T& value) {
    internal::SyncGuard guard(home_);
    return try_send_from(value, guard.shared());
  }
  // The same for a temporary or std::move(v): try_send(make_job()), as
  // send() takes one. `value` is moved from only if it was sent.
  bool try_send(T&& value) { return try_send(value); }

  // The next value, parking until there is one; nullopt once the channel is
  // closed and drained.
  // Throws: Cancelled, TimeoutError; std::logic_error when it must wait on a
  //         loop's thread outside a fiber.
  [[gnu::always_inline]] std::optional<T> recv() {
    if constexpr (!kNothrowMove) {
      return recv_in_place();
    } else {
      internal::SyncGuard guard(home_, internal::Entry::waiting());
      bool done = false;
      if (std::optional<T> now = take_now(guard.shared(), done); done) return now;
      std::optional<T> out;
      wait_recv(guard, out);
      return out;
    }
  }

  // The next value if one is there now; nullopt otherwise (or once closed
  // and drained: tell the two apart with closed()).
  std::optional<T> try_recv() {
    if constexpr (!kNothrowMove) {
      return try_recv_in_place();
    } else {
      internal::SyncGuard guard(home_);
      bool done = false;
      return take_now(guard.shared(), done);
    }
  }

  // No more sends: waiting senders get ChannelClosed, waiting receivers
  // nullopt; buffered values can still be received. Idempotent.
  void close() {
    internal::SyncGuard guard(home_);
    close_now(guard.shared());
  }

  // Whether close() was called; values buffered now; the buffer size.
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  std::size_t size() const noexcept { return count_.load(std::memory_order_relaxed); }
  std::size_t capacity() const noexcept { return capacity_; }

  // select() cases: a receive into `slot`, a send of `value`.
  auto recv_case(std::optional<T>& slot);
  template <class U>
  auto send_case(U&& value);

 private:
  friend class RecvCase<T>;
  friend class SendCase<T>;

  // Under the guard (`shared`: of a shared channel), as every function below.
  // Completes a send now if it can. Throws ChannelClosed.
  bool try_send_from(T& value, bool shared) {
    if (closed_.load(std::memory_order_relaxed)) throw ChannelClosed();
    if (internal::ChannelOp* r = internal::claim(receivers_, shared)) {
      hand_off(*r, [&] { static_cast<std::optional<T>*>(r->value)->emplace(std::move(value)); });
      return true;
    }
    const std::size_t count = count_.load(std::memory_order_relaxed);
    if (count < capacity_) {
      ring_[wrap(head_ + count)].emplace(std::move(value));
      count_.store(count + 1, std::memory_order_relaxed);
      return true;
    }
    return false;
  }
  // Completes a recv now if it can: a value, or nullopt when closed and
  // drained. Returns: whether it completed.
  bool try_recv_into(std::optional<T>& out, bool shared) {
    out.reset();
    return take_into(out, shared);
  }
  // recv() and try_recv() for a T whose move may throw: one optional, built
  // once and returned in place (NRVO), so no move can throw after the value
  // has left the channel.
  [[gnu::always_inline]] std::optional<T> recv_in_place() {
    internal::SyncGuard guard(home_, internal::Entry::waiting());
    std::optional<T> out;
    if (!take_into(out, guard.shared())) wait_recv(guard, out);
    return out;
  }
  std::optional<T> try_recv_in_place() {
    internal::SyncGuard guard(home_);
    std::optional<T> out;
    (void)take_into(out, guard.shared());
    return out;
  }
  // Parks until a sender (or close) completes the recv into `out`.
  [[gnu::always_inline]] void wait_recv(internal::SyncGuard& guard, std::optional<T>& out) {
    internal::ChannelOp op;
    op.value = &out;
    park(guard, receivers_, op, "Channel::recv");
    internal::throw_if_failed(op);
  }
  // Completes a recv now if it can, building the value in `out` (empty):
  // a value, or nothing once closed and drained. A T whose move throws
  // leaves the channel as it was (or the parked sender it came from has the
  // exception too). Returns: whether it completed.
  bool take_into(std::optional<T>& out, bool shared) {
    const std::size_t count = count_.load(std::memory_order_relaxed);
    if (count > 0) {
      out.emplace(std::move(*ring_[head_]));  // throws: nothing changed
      after_take(count, shared);
      return true;
    }
    if (internal::ChannelOp* s = internal::claim(senders_, shared)) {
      hand_off(*s, [&] { out.emplace(std::move(*static_cast<T*>(s->value))); });
      return true;
    }
    return closed_.load(std::memory_order_relaxed);
  }
  // The same, returning the value: built in registers, where an optional
  // written to memory in two parts (value, flag) and read back whole stalls
  // on store forwarding. `done` says whether the recv completed.
  // The same, for a T whose move cannot throw, returning the value: built
  // in registers, where an optional written to memory in two parts (value,
  // flag) and read back whole stalls on store forwarding. `done` says
  // whether the recv completed.
  std::optional<T> take_now(bool shared, bool& done) {
    static_assert(kNothrowMove, "a T whose move may throw takes take_into()");
    done = true;
    const std::size_t count = count_.load(std::memory_order_relaxed);
    if (count > 0) {
      T value(std::move(*ring_[head_]));
      after_take(count, shared);
      return std::optional<T>(std::move(value));
    }
    if (internal::ChannelOp* s = internal::claim(senders_, shared)) {
      T value(std::move(*static_cast<T*>(s->value)));  // unbuffered: from the sender
      s->complete();
      return std::optional<T>(std::move(value));
    }
    done = closed_.load(std::memory_order_relaxed);  // then nullopt: closed and drained
    return std::nullopt;
  }
  // The value at head_ has been taken (count were buffered): frees its
  // slot, and refills the ring from a parked sender if one waits. A sender
  // whose value's move throws gets that exception; the receive stands.
  void after_take(std::size_t count, bool shared) noexcept {
    ring_[head_].reset();
    head_ = wrap(head_ + 1);
    // Room now: the first parked sender whose value moves in fills it (one
    // whose move throws gets the exception, and the next one is asked).
    while (internal::ChannelOp* s = internal::claim(senders_, shared)) {
      if (hand_off_or_fail(*s, [&] {
            ring_[wrap(head_ + count - 1)].emplace(std::move(*static_cast<T*>(s->value)));
          })) {
        return;
      }
    }
    count_.store(count - 1, std::memory_order_relaxed);
  }

  static constexpr bool kNothrowMove = std::is_nothrow_move_constructible_v<T>;
  // Runs `move`, a hand-off of a value to or from the claimed `peer`, then
  // completes `peer`. If the move throws (a T whose move may), `peer`
  // completes carrying the exception, which its wait rethrows, instead of
  // staying claimed and never woken; the exception propagates here too.
  template <class Move>
  static void hand_off(internal::ChannelOp& peer, Move move) {
    if constexpr (kNothrowMove) {
      move();
    } else {
      try {
        move();
      } catch (...) {
        peer.fail(std::current_exception());
        throw;
      }
    }
    peer.complete();
  }
  // As hand_off(), but the exception stays with `peer`. Returns: false if
  // the move threw.
  template <class Move>
  static bool hand_off_or_fail(internal::ChannelOp& peer, Move move) noexcept {
    try {
      hand_off(peer, move);
      return true;
    } catch (...) {
      return false;
    }
  }
  // A ring index from head_ plus at most capacity_: a compare, where `%`
  // is a division on every buffered send and receive.
  std::size_t wrap(std::size_t i) const noexcept { return i < capacity_ ? i : i - capacity_; }
  void enqueue_send(internal::ChannelOp& op) noexcept { senders_.push_back(op); }
  void enqueue_recv(internal::ChannelOp& op) noexcept { receivers_.push_back(op); }

  void close_now(bool shared) noexcept {
    if (closed_.load(std::memory_order_relaxed)) return;
    closed_.store(true, std::memory_order_release);
    while (internal::ChannelOp* r = internal::claim(receivers_, shared)) r->complete(true);
    while (internal::ChannelOp* s = internal::claim(senders_, shared)) s->complete(true);
  }
  // Inline into send() and recv(): a frame between them and the switch costs
  // a mispredicted return at every resumption (fiber/internal/context.h).
  [[gnu::always_inline]] void park(internal::SyncGuard& guard,
                                   internal::IntrusiveList<internal::ChannelOp>& queue,
                                   internal::ChannelOp& op, const char* what) {
    op.prepare(what, /*interruptible=*/true);
    queue.push_back(op);
    const internal::WaitEnd end = internal::block(guard, home_, op, internal::kNever,
                                                  internal::WaitKind::kChannel, &op.channel_gone);
    if (end == internal::WaitEnd::kNotified) [[likely]]
      return;
    op.unlink();
    internal::throw_interrupted(what);
  }

  std::size_t capacity_;
  std::unique_ptr<std::optional<T>[]> ring_;
  std::size_t head_ = 0;
  std::atomic<std::size_t> count_{0};  // atomic for size(); changed under the guard
  std::atomic<bool> closed_{false};    // atomic for closed(); changed under the guard
  internal::SyncHome home_;
  internal::IntrusiveList<internal::ChannelOp> senders_;    // parked, each with its value
  internal::IntrusiveList<internal::ChannelOp> receivers_;  // parked, each with its slot
};

}  // namespace fiberloop

#include "sync/select.h"  // the case types recv_case()/send_case() return

namespace fiberloop {

template <class T>
auto Channel<T>::recv_case(std::optional<T>& slot) {
  return RecvCase<T>(*this, slot);
}

template <class T>
template <class U>
auto Channel<T>::send_case(U&& value) {
  return SendCase<T>(*this, T(std::forward<U>(value)));
}

}  // namespace fiberloop
