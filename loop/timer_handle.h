// TimerHandle: what call_soon/call_later/call_at return.
//
//   auto h = loop.call_later(std::chrono::seconds(5), [] { std::puts("late"); });
//   h.cancel();   // it will not run
#pragma once

#include <cstdint>
#include <memory>
#include <utility>

namespace fiberloop {
namespace internal {
class CallbackTable;
class Callbacks;
}  // namespace internal

// Copyable; every copy names the same callback. An empty handle
// (default-made) is never active.
class TimerHandle {
 public:
  TimerHandle() = default;

  // Stops the callback from running if it has not run yet. A no-op once it
  // has run or been cancelled, and once its loop is gone.
  // Throws: std::logic_error from a thread other than the loop's.
  void cancel();

  // True while the callback waits to run (false while it runs, and once it
  // has run, been cancelled, or its loop is gone). On the loop's thread, as
  // cancel(): from another thread the answer may be stale when it returns.
  bool active() const noexcept;

 private:
  friend class internal::Callbacks;
  TimerHandle(std::shared_ptr<internal::CallbackTable> table, std::uint32_t slot,
              std::uint32_t generation)
      : table_(std::move(table)), slot_(slot), generation_(generation) {}

  std::shared_ptr<internal::CallbackTable> table_;
  std::uint32_t slot_ = 0;
  std::uint32_t generation_ = 0;
};

}  // namespace fiberloop
