// The loop's timers: a 4-ary min-heap of deadlines. Each node knows its slot
// in the heap, so removing one (a cancelled sleep, a finished with_timeout,
// TimerHandle::cancel) is O(log n) and allocates nothing. Ties fire in the
// order they were added. 4-ary rather than binary: half the levels, and the
// four children of a node share a cache line or two (bench/timer_bench).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fiber/internal/check.h"
#include "loop/internal/deadline.h"
#include "loop/options.h"

namespace fiberloop::internal {

class TimerHeap {
 public:
  bool empty() const noexcept { return entries_.empty(); }
  std::size_t size() const noexcept { return entries_.size(); }

  // The earliest deadline. Requires (checked): !empty().
  TimePoint next_deadline() const noexcept {
    FIBERLOOP_CHECK(!empty(), "TimerHeap::next_deadline of an empty heap");
    return entries_.front().deadline;
  }

  // Queues `node` to fire at `deadline`. TimePoint::max() is never: the node
  // is not queued at all, so it neither fires nor counts as pending.
  // Requires (checked): !node.queued().
  void push(TimerNode& node, TimePoint deadline);

  // Takes `node` out; a no-op if it is not queued.
  void remove(TimerNode& node) noexcept;

  // Removes and returns the earliest node if its deadline is <= now, else null.
  TimerNode* pop_expired(TimePoint now) noexcept;

 private:
  struct Entry {
    TimePoint deadline;
    std::uint64_t seq;  // insertion order, for ties
    TimerNode* node;
    bool before(const Entry& other) const noexcept {
      return deadline < other.deadline || (deadline == other.deadline && seq < other.seq);
    }
  };
  static constexpr std::size_t kArity = 4;

  void place(std::size_t i, const Entry& e) noexcept {
    entries_[i] = e;
    e.node->heap_index = i;
  }
  void sift_up(std::size_t i, Entry e) noexcept;
  void sift_down(std::size_t i, Entry e) noexcept;

  std::vector<Entry> entries_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace fiberloop::internal
