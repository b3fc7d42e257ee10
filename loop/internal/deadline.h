// Deadlines: what waits for one (TimerNode), and the saturating arithmetic
// that turns a Duration or TimePoint the API takes into one. Any value its
// type holds is valid: TimePoint::max() (and so Duration::max() from now)
// means never; anything in the past (Duration::min(), TimePoint::min())
// means now. Plain `now + d` and
// `deadline - now` overflow at the extremes, which once froze the loop in
// epoll with a wrapped timeout.
#pragma once

#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>

#include "loop/options.h"

namespace fiberloop::internal {

// A deadline that never comes: timers at it are not queued at all.
inline constexpr TimePoint kNever = TimePoint::max();

// `now + d`: now for d <= 0, kNever where the sum would overflow.
// (A deadline from a duration the API takes comes from deadline_from_now(),
// loop/internal/switch_path.h, which picks `now`.)
inline TimePoint deadline_after(Duration d, TimePoint now) noexcept {
  if (d <= Duration::zero()) return now;
  Duration::rep sum;
  if (__builtin_add_overflow(now.time_since_epoch().count(), d.count(), &sum)) return kNever;
  return TimePoint(Duration(sum));
}

// `deadline - now`: zero for a deadline not after now, Duration::max() for
// kNever (and wherever the difference would overflow).
inline Duration time_until(TimePoint deadline, TimePoint now) noexcept {
  if (deadline <= now) return Duration::zero();
  if (deadline == kNever) return Duration::max();
  Duration::rep diff;
  if (__builtin_sub_overflow(deadline.time_since_epoch().count(), now.time_since_epoch().count(),
                             &diff)) {
    return Duration::max();
  }
  return Duration(diff);
}

// A timeout in whole milliseconds, for epoll_wait: rounded up (a wait never
// ends before its deadline), 0 for d <= 0, and capped at INT_MAX (24.8 days:
// the caller waits again).
inline int poll_timeout_ms(Duration d) noexcept {
  if (d <= Duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(d);
  return ms.count() >= INT_MAX ? INT_MAX : static_cast<int>(ms.count());
}

// Something waiting for a deadline in the loop's timer heap. Lives wherever
// its owner does (a parked fiber's stack, a with_timeout frame, the loop's
// callback table).
struct TimerNode {
  static constexpr std::size_t kNotQueued = ~std::size_t{0};

  // Called by the loop once the deadline has passed; the node is out of the
  // heap by then and may be queued again.
  void (*fire)(TimerNode* self) = nullptr;
  std::size_t heap_index = kNotQueued;

  bool queued() const noexcept { return heap_index != kNotQueued; }
};

}  // namespace fiberloop::internal
