// select: wait on several channel operations at once and complete exactly
// one (Go's select).
//
//   std::optional<Job> job;
//   switch (fiberloop::select(jobs.recv_case(job), quit.recv_case(stop))) {
//     case 0: run(*job); break;
//     case 1: return;
//   }
//   if (auto i = fiberloop::select_for(100ms, results.send_case(r))) ... else timed out
//
// Cases are tried in the order given; if none can complete at once, the fiber
// parks on all of them and the first channel to complete one wins. The
// others are left untouched (a losing send keeps its value, a losing recv
// leaves its slot empty). A recv case on a closed, drained channel completes
// with its slot empty; a send case on a closed channel throws ChannelClosed.
#pragma once

#include "fiber/internal/require_cxx20.h"  // IWYU pragma: keep

#include <array>
#include <cstddef>
#include <optional>
#include <utility>

#include "loop/internal/deadline.h"
#include "loop/internal/loop_core.h"
#include "loop/internal/timer_heap.h"
#include "loop/options.h"
#include "sync/channel.h"
#include "sync/internal/channel_op.h"

namespace fiberloop {

// A receive from `channel` into `slot`; made by Channel::recv_case().
template <class T>
class RecvCase {
 public:
  RecvCase(Channel<T>& channel, std::optional<T>& slot) : channel_(channel), slot_(slot) {}
  bool try_now() { return channel_.try_recv_into(slot_); }
  void enqueue(internal::ChannelOp& op) {
    slot_.reset();
    op.value = &slot_;
    channel_.enqueue_recv(op);
  }

 private:
  Channel<T>& channel_;
  std::optional<T>& slot_;
};

// A send of `value` to `channel`; made by Channel::send_case().
template <class T>
class SendCase {
 public:
  SendCase(Channel<T>& channel, T value) : channel_(channel), value_(std::move(value)) {}
  bool try_now() { return channel_.try_send_from(value_); }
  void enqueue(internal::ChannelOp& op) {
    op.value = &value_;
    channel_.enqueue_send(op);
  }

 private:
  Channel<T>& channel_;
  T value_;
};

namespace internal {

template <class Case>
constexpr bool kIsSend = false;
template <class T>
constexpr bool kIsSend<SendCase<T>> = true;

// Parks on every case until one completes or `deadline` passes.
// Returns: the winning case, or nullopt on timeout.
template <class... Cases>
std::optional<std::size_t> select_until(std::optional<TimePoint> deadline, Cases&... cases) {
  {  // first, whatever can complete at once, in order
    std::size_t i = 0;
    std::optional<std::size_t> ready;
    ((ready || (cases.try_now() ? (ready = i, true) : (++i, false))), ...);
    if (ready) return ready;
  }
  if (deadline && *deadline <= Clock::now()) return std::nullopt;

  FiberRecord& self = running_fiber_or_throw("select");
  LoopCore& loop = *self.loop;
  SelectState state;
  std::array<ChannelOp, sizeof...(Cases)> ops;
  {
    std::size_t i = 0;
    ((ops[i].fiber = &self, ops[i].select = &state, ops[i].case_index = i, cases.enqueue(ops[i]),
      ++i),
     ...);
  }
  struct Expiry : TimerNode {
    FiberRecord* fiber;
  } expiry;
  expiry.fiber = &self;
  expiry.fire = [](TimerNode* node) {
    FiberRecord& f = *static_cast<Expiry*>(node)->fiber;
    if (f.state == FiberState::kParked) f.loop->wake(f);  // no case won: a timeout
  };
  if (deadline) loop.add_timer(expiry, *deadline);
  try {
    loop.park(WaitKind::kChannel);  // every op leaves its queue when `ops` is destroyed
  } catch (...) {
    loop.remove_timer(expiry);
    throw;
  }
  loop.remove_timer(expiry);
  if (state.winner == SelectState::kNone) return std::nullopt;
  {  // a send case completed by close() throws
    std::size_t i = 0;
    ((i++ == state.winner && kIsSend<Cases> && ops[state.winner].closed ? throw ChannelClosed()
                                                                        : void()),
     ...);
  }
  return state.winner;
}

}  // namespace internal

// Completes exactly one of `cases`, parking until one can. Returns: its index.
// Throws: ChannelClosed from a send case on a closed channel; Cancelled;
//         TimeoutError; std::logic_error when it must park outside a fiber.
template <class... Cases>
std::size_t select(Cases&&... cases) {
  return *internal::select_until(std::nullopt, cases...);
}

// As select(), giving up after `timeout`. Returns: the index, or nullopt if
// no case completed in time.
template <class... Cases>
std::optional<std::size_t> select_for(Duration timeout, Cases&&... cases) {
  return internal::select_until(internal::deadline_after(timeout), cases...);
}

}  // namespace fiberloop
