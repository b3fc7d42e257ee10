// A fiber's pending channel operation, on its stack: a plain send or recv,
// or one case of a select(). A fiber in a select has one op per case in
// several channels' queues at once; the first channel to complete one wakes
// the fiber, and the others then find it no longer parked and skip its ops
// (which it unlinks itself when it runs). The same check skips a fiber that
// was interrupted while parked, so a value passes to the next waiter.
#pragma once

#include <cstddef>

#include "loop/internal/fiber_record.h"
#include "loop/internal/intrusive_list.h"
#include "loop/internal/loop_core.h"

namespace fiberloop::internal {

struct SelectState {
  static constexpr std::size_t kNone = ~std::size_t{0};
  std::size_t winner = kNone;
};

struct ChannelOp : ListHook<> {
  FiberRecord* fiber = nullptr;
  void* value = nullptr;  // send: the T to move from; recv: the std::optional<T> to fill
  SelectState* select = nullptr;
  std::size_t case_index = 0;
  bool closed = false;  // completed by close()

  // Whether this op can still be completed: its fiber is parked on it.
  bool claimable() const noexcept { return fiber->state == FiberState::kParked; }

  // Marks the op done and wakes its fiber.
  void complete(bool by_close = false) noexcept {
    closed = by_close;
    if (select != nullptr) select->winner = case_index;
    fiber->loop->wake(*fiber);
  }
};

// Pops ops from `queue` until one can be completed; null if none can.
inline ChannelOp* claim(IntrusiveList<ChannelOp>& queue) noexcept {
  while (!queue.empty()) {
    ChannelOp& op = queue.pop_front();
    if (op.claimable()) return &op;
  }
  return nullptr;
}

}  // namespace fiberloop::internal
