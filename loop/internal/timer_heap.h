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
  // Requires (checked): !node.queued(). Throws: std::bad_alloc (the heap
  // grows; the node is then not queued). Inline up to the sift: a timer
  // not earlier than its parent (the only timer, or one due after the
  // others) stays where it is appended.
  void push(TimerNode& node, TimePoint deadline) {
    FIBERLOOP_CHECK(!node.queued(), "TimerHeap::push of a node already queued");
    if (deadline == TimePoint::max()) return;  // never: nothing to wait for
    const Entry e{deadline, next_seq_++, &node};
    const std::size_t i = entries_.size();
    entries_.push_back(e);
    node.heap_index = i;
    if (i > 0 && e.before(entries_[(i - 1) / kArity])) sift_up(i, e);
  }

  // Takes `node` out; a no-op if it is not queued. Inline when it is in the
  // last slot: the newest timer, if nothing moved it since (a with_timeout
  // scope's, in a loop with no timer due after it).
  void remove(TimerNode& node) noexcept {
    if (!node.queued()) return;
    const std::size_t i = node.heap_index;
    node.heap_index = TimerNode::kNotQueued;
    if (i + 1 == entries_.size()) {
      entries_.pop_back();
      return;
    }
    fill_hole(i);
  }

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
  // Moves the last entry into slot `i`, which a removal emptied, and lets it
  // move whichever way it must.
  void fill_hole(std::size_t i) noexcept;
  void sift_up(std::size_t i, Entry e) noexcept;
  void sift_down(std::size_t i, Entry e) noexcept;

  std::vector<Entry> entries_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace fiberloop::internal
