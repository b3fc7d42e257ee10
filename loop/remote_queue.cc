#include "loop/internal/remote_queue.h"

#include <memory>
#include <utility>

#include "loop/internal/callbacks.h"
#include "loop/internal/reactor.h"

namespace fiberloop::internal {

RemoteQueue::~RemoteQueue() { drain(true); }

void RemoteQueue::post(std::function<void()> fn) {
  auto* post = new Post(std::move(fn));
  post->handle = &RemoteQueue::handle_post;
  post->callbacks = &callbacks_;
  push(*post);
}

void RemoteQueue::handle_post(RemoteItem* item, bool drop) {
  std::unique_ptr<Post> post(static_cast<Post*>(item));
  // Destroyed on the loop thread either way: what a post holds may call
  // call_soon() from its destructor (a Promise does), which a closing loop
  // drops instead of running.
  if (!drop) post->callbacks->call_soon_posted(post->fn);
}

void RemoteQueue::push(RemoteItem& item) noexcept {
  queue_.push(&item);
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
  // other side sees it, so a push never sleeps in a blocked loop.
  pending_.store(true, std::memory_order_seq_cst);
  if (polling_.load(std::memory_order_seq_cst)) reactor_.wake();
}

bool RemoteQueue::enter_poll() noexcept {
  polling_.store(true, std::memory_order_seq_cst);
  return pending_.load(std::memory_order_seq_cst);
}

void RemoteQueue::drain(bool drop) {
  pending_.exchange(false, std::memory_order_acquire);
  // A push still under way hides itself (and what came after) until its
  // producer finishes; that producer then sets pending_ again.
  while (MpscNode* node = queue_.pop()) {
    auto* item = static_cast<RemoteItem*>(node);
    item->handle(item, drop);
  }
}

}  // namespace fiberloop::internal
