// Channel<T>: Go's channels between fibers of one loop.
//
//   fiberloop::Channel<std::string> lines(16);   // buffered; Channel<T>() is unbuffered
//   spawn([&] { for (auto& l : read_lines()) lines.send(l); lines.close(); });
//   while (auto line = lines.recv()) handle(*line);
//
// Unbuffered (capacity 0): send() waits for a receiver, a rendezvous.
// Buffered: send() waits only while the buffer is full. Blocked senders and
// receivers are served first come, first served. Values may be move-only.
// close() wakes every waiter: receivers drain what is buffered and then get
// nullopt; senders get ChannelClosed. Single loop (see event.h).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
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
  // Closes the channel first: fibers still waiting on it wake (see close()).
  ~Channel() { close_now(); }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Hands `value` to a waiting receiver, or buffers it, or parks until one of
  // those can happen.
  // Throws: ChannelClosed (at once, or when the channel closes while parked);
  //         Cancelled, TimeoutError (the value was not sent); std::logic_error
  //         when it must park outside a fiber, or from another loop's thread
  //         (as every operation: hand it over with Loop::call_soon_threadsafe).
  void send(T value) {
    if (try_send_from(value)) return;
    internal::ChannelOp op;
    op.value = &value;
    park(senders_, op, "Channel::send");
    if (op.closed) throw ChannelClosed();
  }

  // Sends if that needs no waiting. Returns: whether it sent (`value` is
  // moved from only then).
  // Throws: ChannelClosed.
  bool try_send(T& value) { return try_send_from(value); }

  // The next value, parking until there is one; nullopt once the channel is
  // closed and drained.
  // Throws: Cancelled, TimeoutError; std::logic_error when it must park
  //         outside a fiber.
  std::optional<T> recv() {
    std::optional<T> out;
    if (try_recv_into(out)) return out;
    internal::ChannelOp op;
    op.value = &out;
    park(receivers_, op, "Channel::recv");
    return out;
  }

  // The next value if one is there now; nullopt otherwise (or once closed
  // and drained: tell the two apart with closed()).
  std::optional<T> try_recv() {
    std::optional<T> out;
    try_recv_into(out);
    return out;
  }

  // No more sends: waiting senders get ChannelClosed, waiting receivers
  // nullopt; buffered values can still be received. Idempotent.
  void close() {
    home_.check("Channel::close");
    close_now();
  }

  // Whether close() was called; values buffered now; the buffer size.
  bool closed() const noexcept { return closed_; }
  std::size_t size() const noexcept { return count_; }
  std::size_t capacity() const noexcept { return capacity_; }

  // select() cases: a receive into `slot`, a send of `value`.
  auto recv_case(std::optional<T>& slot);
  template <class U>
  auto send_case(U&& value);

 private:
  friend class RecvCase<T>;
  friend class SendCase<T>;

  // Completes a send now if it can. Throws ChannelClosed.
  bool try_send_from(T& value) {
    home_.check("Channel::send");
    if (closed_) throw ChannelClosed();
    if (internal::ChannelOp* r = internal::claim(receivers_)) {
      static_cast<std::optional<T>*>(r->value)->emplace(std::move(value));
      r->complete();
      return true;
    }
    if (count_ < capacity_) {
      ring_[(head_ + count_++) % capacity_].emplace(std::move(value));
      return true;
    }
    return false;
  }
  // Completes a recv now if it can: a value, or nullopt when closed and
  // drained. Returns: whether it completed.
  bool try_recv_into(std::optional<T>& out) {
    home_.check("Channel::recv");
    if (count_ > 0) {
      out.emplace(std::move(*ring_[head_]));
      ring_[head_].reset();
      head_ = (head_ + 1) % capacity_;
      --count_;
      if (internal::ChannelOp* s =
              internal::claim(senders_)) {  // room now: take a waiting sender's value
        ring_[(head_ + count_++) % capacity_].emplace(std::move(*static_cast<T*>(s->value)));
        s->complete();
      }
      return true;
    }
    if (internal::ChannelOp* s =
            internal::claim(senders_)) {  // unbuffered: straight from the sender
      out.emplace(std::move(*static_cast<T*>(s->value)));
      s->complete();
      return true;
    }
    if (closed_) {
      out.reset();
      return true;
    }
    return false;
  }
  void enqueue_send(internal::ChannelOp& op) noexcept { senders_.push_back(op); }
  void enqueue_recv(internal::ChannelOp& op) noexcept { receivers_.push_back(op); }

  void close_now() noexcept {
    if (closed_) return;
    closed_ = true;
    while (internal::ChannelOp* r = internal::claim(receivers_)) r->complete(true);
    while (internal::ChannelOp* s = internal::claim(senders_)) s->complete(true);
  }
  // Inline into send() and recv(): a frame between them and the switch costs
  // a mispredicted return at every resumption (fiber/internal/context.h).
  [[gnu::always_inline]] void park(internal::IntrusiveList<internal::ChannelOp>& queue,
                                   internal::ChannelOp& op, const char* what) {
    internal::FiberRecord& self = internal::running_fiber_or_throw(what);
    op.fiber = &self;
    queue.push_back(op);
    self.scheduler->park(internal::WaitKind::kChannel);  // an interrupted op leaves when destroyed
  }

  std::size_t capacity_;
  std::unique_ptr<std::optional<T>[]> ring_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  bool closed_ = false;
  internal::HomeLoop home_;
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
