// The round-robin ready queue: a ring of fiber pointers that grows by
// doubling and never shrinks, so pushing and popping allocate nothing in
// steady state. A ring rather than a linked list because the scheduler can
// then prefetch the records and stacks of the fibers it will run next, which
// keeps a yield flat in cost from 2 ready fibers to a million.
#pragma once

#include <cstddef>
#include <memory>

#include "fiber/internal/check.h"

namespace fiberloop::internal {

struct FiberRecord;

class ReadyQueue {
 public:
  bool empty() const noexcept { return head_ == tail_; }
  std::size_t size() const noexcept { return tail_ - head_; }

  [[gnu::always_inline]] void push_back(FiberRecord* f) {
    if (tail_ - head_ == capacity_) grow();
    slots_[tail_++ & (capacity_ - 1)] = f;
  }

  [[gnu::always_inline]] FiberRecord* pop_front() noexcept {
    FIBERLOOP_CHECK(!empty(), "ReadyQueue::pop_front on an empty queue");
    return slots_[head_++ & (capacity_ - 1)];
  }

  // The fiber `ahead` places behind the front, or null. For prefetching.
  FiberRecord* peek(std::size_t ahead) const noexcept {
    return ahead < size() ? slots_[(head_ + ahead) & (capacity_ - 1)] : nullptr;
  }

 private:
  [[gnu::noinline]] void grow() {
    const std::size_t capacity = capacity_ == 0 ? 64 : capacity_ * 2;
    auto slots = std::make_unique<FiberRecord*[]>(capacity);
    for (std::size_t i = 0; i < size(); ++i) slots[i] = slots_[(head_ + i) & (capacity_ - 1)];
    tail_ = size();
    head_ = 0;
    slots_ = std::move(slots);
    capacity_ = capacity;
  }

  std::unique_ptr<FiberRecord*[]> slots_;
  std::size_t capacity_ = 0;  // a power of two
  std::size_t head_ = 0;      // head_ and tail_ count up; index = count & (capacity_ - 1)
  std::size_t tail_ = 0;
};

}  // namespace fiberloop::internal
