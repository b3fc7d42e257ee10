#include "loop/internal/timer_heap.h"

namespace fiberloop::internal {

void TimerHeap::fill_hole(std::size_t i) noexcept {
  const Entry last = entries_.back();
  entries_.pop_back();
  if (i > 0 && last.before(entries_[(i - 1) / kArity])) {
    sift_up(i, last);
  } else {
    sift_down(i, last);
  }
}

TimerNode* TimerHeap::pop_expired(TimePoint now) noexcept {
  if (entries_.empty() || entries_.front().deadline > now) return nullptr;
  TimerNode* node = entries_.front().node;
  remove(*node);
  return node;
}

void TimerHeap::sift_up(std::size_t i, Entry e) noexcept {
  while (i > 0) {
    const std::size_t parent = (i - 1) / kArity;
    if (!e.before(entries_[parent])) break;
    place(i, entries_[parent]);
    i = parent;
  }
  place(i, e);
}

void TimerHeap::sift_down(std::size_t i, Entry e) noexcept {
  const std::size_t n = entries_.size();
  for (;;) {
    const std::size_t first = i * kArity + 1;
    if (first >= n) break;
    std::size_t best = first;
    const std::size_t end = first + kArity < n ? first + kArity : n;
    for (std::size_t c = first + 1; c < end; ++c) {
      if (entries_[c].before(entries_[best])) best = c;
    }
    if (!entries_[best].before(e)) break;
    place(i, entries_[best]);
    i = best;
  }
  place(i, e);
}

}  // namespace fiberloop::internal
