// What other threads hand a loop: call_soon_threadsafe() posts, stop(),
// KeepAlives and dump requests. A post wakes the loop's poll only when the
// loop is, or is about to be, blocked in it: `pending_` and `polling_` pair
// up (Dekker), so a busy loop receives posts without a syscall and a blocked
// one never sleeps through one.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <vector>

namespace fiberloop::internal {

class Reactor;

class RemoteQueue {
 public:
  explicit RemoteQueue(Reactor& reactor) noexcept : reactor_(reactor) {}
  RemoteQueue(const RemoteQueue&) = delete;
  RemoteQueue& operator=(const RemoteQueue&) = delete;

  // ---- any thread ----
  // Queues `fn` for the loop thread and wakes the loop if it is blocked.
  void post(std::function<void()> fn);
  // Makes the loop's run return after the current iteration.
  void stop() noexcept;
  void add_keep_alive() noexcept { keep_alives_.fetch_add(1, std::memory_order_relaxed); }
  // Dropping the last one wakes the loop, so that a run() with nothing
  // else to do can return.
  void drop_keep_alive() noexcept;
  // A dump to stderr at the next iteration. Async-signal-safe.
  void request_dump() noexcept;

  // ---- the loop thread ----
  // Whether a post, stop or dump request may be waiting. Cheap.
  bool pending() const noexcept { return pending_.load(std::memory_order_relaxed); }
  // Takes what was posted since the last call (empty if nothing was).
  std::vector<std::function<void()>> take();
  // Destroys every post without running it; again until none is left, as
  // destroying one may post another (shutdown).
  void drop() noexcept;
  bool take_stop() noexcept { return stop_requested_.exchange(false, std::memory_order_relaxed); }
  bool take_dump_request() noexcept {
    return dump_requested_.exchange(false, std::memory_order_relaxed);
  }
  std::size_t keep_alives() const noexcept { return keep_alives_.load(std::memory_order_relaxed); }
  // Around a poll that may block: while `polling`, posts write the wake-up
  // eventfd. Returns, on entering, whether something is already pending
  // (then the poll must not block).
  bool enter_poll() noexcept;
  void leave_poll() noexcept { polling_.store(false, std::memory_order_relaxed); }
  // True while the loop is blocked in its poll (the stall detector). Any thread.
  bool polling() const noexcept { return polling_.load(std::memory_order_relaxed); }

 private:
  void notify() noexcept;

  Reactor& reactor_;
  std::mutex mutex_;
  std::vector<std::function<void()>> posts_;
  std::atomic<bool> pending_{false};
  std::atomic<bool> polling_{false};
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> dump_requested_{false};
  std::atomic<std::size_t> keep_alives_{0};
};

}  // namespace fiberloop::internal
