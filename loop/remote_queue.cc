#include "loop/internal/remote_queue.h"

#include <utility>

#include "loop/internal/reactor.h"

namespace fiberloop::internal {

void RemoteQueue::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mutex_);
    posts_.push_back(std::move(fn));
  }
  notify();
}

void RemoteQueue::stop() noexcept {
  stop_requested_.store(true, std::memory_order_relaxed);
  notify();
}

void RemoteQueue::drop_keep_alive() noexcept {
  keep_alives_.fetch_sub(1, std::memory_order_relaxed);
  notify();
}

void RemoteQueue::request_dump() noexcept {
  dump_requested_.store(true, std::memory_order_relaxed);
  notify();  // the run loop looks at the next iteration, and the poll wakes
}

void RemoteQueue::notify() noexcept {
  // Pairs with enter_poll(): whichever of the two stores comes first, the
  // other side sees it, so a post never sleeps in a blocked loop.
  pending_.store(true, std::memory_order_seq_cst);
  if (polling_.load(std::memory_order_seq_cst)) reactor_.wake();
}

bool RemoteQueue::enter_poll() noexcept {
  polling_.store(true, std::memory_order_seq_cst);
  return pending_.load(std::memory_order_seq_cst);
}

std::vector<std::function<void()>> RemoteQueue::take() {
  std::vector<std::function<void()>> posted;
  if (!pending_.exchange(false, std::memory_order_acquire)) return posted;
  std::lock_guard lock(mutex_);
  posted.swap(posts_);
  return posted;
}

void RemoteQueue::drop() noexcept {
  // Destroyed on the loop thread, with the loop closing: what a post holds
  // may call call_soon() from its destructor (a Promise does), which then
  // drops the callback instead of re-entering the loop.
  for (;;) {
    std::vector<std::function<void()>> posted;
    {
      std::lock_guard lock(mutex_);
      posted.swap(posts_);
    }
    if (posted.empty()) return;
  }
}

}  // namespace fiberloop::internal
