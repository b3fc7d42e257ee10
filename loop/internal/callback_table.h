// Callbacks scheduled with call_soon/call_later/call_at: slots recycled
// through a free list (their addresses stay put, as the timer heap points at
// them), each with a generation so that a TimerHandle to a slot that has
// since been reused does nothing. Shared with the handles, so a handle that
// outlives its loop finds `core` null instead of freed memory.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <utility>

#include "loop/internal/timer_heap.h"

namespace fiberloop::internal {

class LoopCore;
class CallbackTable;

struct Callback : TimerNode {
  enum class State : std::uint8_t { kFree, kSoon, kTimer, kCancelled };
  std::function<void()> fn;
  CallbackTable* table = nullptr;
  std::uint32_t index = 0;
  std::uint32_t generation = 0;
  std::uint32_t next_free = 0;
  State state = State::kFree;
};

class CallbackTable {
 public:
  static constexpr std::uint32_t kNone = ~std::uint32_t{0};

  explicit CallbackTable(LoopCore* core) : core(core) {}

  // A slot holding `fn`, in state kFree (the caller sets the state).
  Callback& allocate(std::function<void()> fn) {
    if (free_head_ == kNone) {
      slots_.emplace_back();
      Callback& c = slots_.back();
      c.table = this;
      c.index = static_cast<std::uint32_t>(slots_.size() - 1);
      c.next_free = kNone;
      free_head_ = c.index;
    }
    Callback& c = slots_[free_head_];
    free_head_ = c.next_free;
    c.fn = std::move(fn);
    return c;
  }

  // Empties the slot; handles to it go stale.
  void release(Callback& c) noexcept {
    c.fn = nullptr;
    c.state = Callback::State::kFree;
    ++c.generation;
    c.next_free = free_head_;
    free_head_ = c.index;
  }

  Callback& operator[](std::uint32_t index) noexcept { return slots_[index]; }
  std::uint32_t size() const noexcept { return static_cast<std::uint32_t>(slots_.size()); }

  LoopCore* core;  // null once the loop is gone

 private:
  std::deque<Callback> slots_;  // a deque: growing never moves a slot
  std::uint32_t free_head_ = kNone;
};

}  // namespace fiberloop::internal
