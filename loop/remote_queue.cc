#include "loop/internal/remote_queue.h"

#include <cstdint>
#include <new>
#include <thread>
#include <utility>

#include "loop/internal/callbacks.h"
#include "loop/internal/reactor.h"

namespace fiberloop::internal {

namespace {

constexpr int kAddressBits = 48;
constexpr std::uint64_t kAddressMask = (std::uint64_t{1} << kAddressBits) - 1;

template <class T>
T* address_of(std::uint64_t head) noexcept {
  return reinterpret_cast<T*>(static_cast<std::uintptr_t>(head & kAddressMask));
}
std::uint64_t pack(const void* node, std::uint64_t pops) noexcept {
  return (pops << kAddressBits) | reinterpret_cast<std::uintptr_t>(node);
}
std::uint64_t pops_of(std::uint64_t head) noexcept { return head >> kAddressBits; }

}  // namespace

RemoteQueue::~RemoteQueue() {
  drain(true);  // flushes the recycled posts too
  wait_for_producers();
  free_retired();
  std::uint64_t head = free_posts_.load(std::memory_order_acquire);
  for (Post* post = address_of<Post>(head); post != nullptr;) {
    Post* next = static_cast<Post*>(post->next.load(std::memory_order_relaxed));
    delete post;
    post = next;
  }
}

void RemoteQueue::post(std::function<void()> fn) {
  // The hand-off is counted from before the pop: the loop frees a node it
  // does not keep only while no producer is inside one (free_retired), so a
  // racing pop never reads freed memory.
  begin_handoff();
  Post* post;
  try {
    post = take_post();
  } catch (...) {
    producers_.fetch_sub(1, std::memory_order_release);
    throw;
  }
  post->fn = std::move(fn);
  queue_.push(post);
  notify();
}

RemoteQueue::Post* RemoteQueue::take_post() {
  // seq_cst, with begin_handoff() before and free_retired()'s look at the
  // count of producers: a pop that starts after that look sees the head
  // that no longer holds a retired node.
  std::uint64_t head = free_posts_.load(std::memory_order_seq_cst);
  while (Post* post = address_of<Post>(head)) {
    // `post` may be popped and pushed again meanwhile: then `next` is stale,
    // and the count of pops in the head makes the exchange fail.
    auto* next = post->next.load(std::memory_order_relaxed);
    if (free_posts_.compare_exchange_weak(head, pack(next, pops_of(head) + 1),
                                          std::memory_order_seq_cst, std::memory_order_seq_cst)) {
      return post;
    }
  }
  auto* post = new Post;
  post->handle = &RemoteQueue::handle_post;
  post->queue = this;
  posts_made_.fetch_add(1, std::memory_order_relaxed);
  return post;
}

void RemoteQueue::recycle(Post* post) noexcept {
  const auto address = reinterpret_cast<std::uintptr_t>(post);
  if ((address & ~kAddressMask) != 0 || posts_made_.load(std::memory_order_relaxed) > kMaxPosts) {
    // An address the head cannot pack, or more nodes than a steady state
    // needs (a burst made them): let this one go, once no pop can be
    // reading it.
    posts_made_.fetch_sub(1, std::memory_order_relaxed);
    post->next.store(retired_, std::memory_order_relaxed);
    retired_ = post;
    return;
  }
  post->next.store(recycled_, std::memory_order_relaxed);
  if (recycled_ == nullptr) recycled_last_ = post;
  recycled_ = post;
}

void RemoteQueue::free_retired() noexcept {
  // A producer's pop may have read a retired node's address from the free
  // list before the node left it; it reads that node's `next` before its
  // hand-off ends. With none inside a hand-off now (seq_cst, with
  // begin_handoff: a pop that starts later sees the node gone), none can.
  if (retired_ == nullptr || producers_.load(std::memory_order_seq_cst) != 0) return;
  while (Post* post = retired_) {
    retired_ = static_cast<Post*>(post->next.load(std::memory_order_relaxed));
    delete post;
  }
}

void RemoteQueue::flush_recycled() noexcept {
  free_retired();
  if (recycled_ == nullptr) return;
  // The whole batch onto the free list in one exchange.
  std::uint64_t head = free_posts_.load(std::memory_order_relaxed);
  do {
    recycled_last_->next.store(address_of<MpscNode>(head), std::memory_order_relaxed);
  } while (!free_posts_.compare_exchange_weak(
      head, pack(recycled_, pops_of(head)), std::memory_order_release, std::memory_order_relaxed));
  recycled_ = recycled_last_ = nullptr;
}

void RemoteQueue::handle_post(RemoteItem* item, bool drop) {
  auto* post = static_cast<Post*>(item);
  // Back to the free list however this ends (call_soon_posted may throw
  // bad_alloc). The callable is destroyed on the loop thread either way: what
  // a post holds may call call_soon() from its destructor (a Promise does),
  // which a closing loop drops instead of running.
  struct Recycle {
    Post* post;
    ~Recycle() {
      post->fn = nullptr;
      post->queue->recycle(post);
    }
  } recycle{post};
  if (!drop) {
    post->queue->callbacks_.call_soon_posted(post->fn);  // moves fn out
  } else if (std::vector<std::function<void()>>* keep = post->queue->keep_dropped_) {
    try {
      keep->push_back(std::move(post->fn));
    } catch (const std::bad_alloc&) {
      // (Destroyed here instead: out of memory while closing.)
    }
  }
}

// Each hand-off is counted from before what it hands over can be seen until
// its last touch of the queue: the loop may handle the item, run out of
// work and be destroyed in between, and ~LoopParts waits for the count to
// drop to zero first (wait_for_producers).
void RemoteQueue::push(RemoteItem& item) noexcept {
  begin_handoff();
  queue_.push(&item);
  notify();
}

void RemoteQueue::stop() noexcept {
  begin_handoff();
  // Release, with take_stop()'s acquire: what the stopping thread did before
  // stop() happens before run() returns (it may destroy the loop at once).
  stop_requested_.store(true, std::memory_order_release);
  notify();
}

void RemoteQueue::drop_keep_alive() noexcept {
  begin_handoff();
  keep_alives_.fetch_sub(1, std::memory_order_release);  // as stop(): before run() returns
  notify();
}

void RemoteQueue::request_dump() noexcept {
  begin_handoff();
  dump_requested_.store(true, std::memory_order_release);
  notify();  // the run loop looks at the next iteration, and the poll wakes
}

void RemoteQueue::notify() noexcept {
  // Pairs with enter_poll(): whichever of the two stores comes first, the
  // other side sees it, so a push never sleeps in a blocked loop.
  pending_.store(true, std::memory_order_seq_cst);
  if (polling_.load(std::memory_order_seq_cst)) reactor_.wake();
  producers_.fetch_sub(1, std::memory_order_release);  // the last touch
}

void RemoteQueue::wait_for_producers() const noexcept {
  // A few instructions each, unless a producer was preempted in the middle.
  while (producers_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
}

bool RemoteQueue::enter_poll() noexcept {
  polling_.store(true, std::memory_order_seq_cst);
  return pending_.load(std::memory_order_seq_cst);
}

void RemoteQueue::drain_keeping_dropped(std::vector<std::function<void()>>& dropped) {
  keep_dropped_ = &dropped;
  drain(true);
  keep_dropped_ = nullptr;
}

void RemoteQueue::drain(bool drop) {
  pending_.exchange(false, std::memory_order_acquire);
  // A push still under way hides itself (and what came after) until its
  // producer finishes; that producer then sets pending_ again.
  try {
    while (MpscNode* node = queue_.pop()) {
      auto* item = static_cast<RemoteItem*>(node);
      item->handle(item, drop);
    }
  } catch (...) {  // (call_soon_posted out of memory): the rest waits for the next drain
    pending_.store(true, std::memory_order_release);
    throw;
  }
  flush_recycled();
}

}  // namespace fiberloop::internal
