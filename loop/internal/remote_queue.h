// What other threads hand a loop: call_soon_threadsafe() posts, wake-ups of
// its fibers, stop(), KeepAlives and dump requests. Posts and wake-ups go
// through a lock-free MPSC queue (no mutex on the post path) that the loop
// drains in batches, once per iteration. A post writes the wake-up eventfd
// only when the loop is, or is about to be, blocked in its poll: `pending_`
// and `polling_` pair up (Dekker), so a busy loop receives posts without a
// syscall and a blocked one never sleeps through one.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "loop/internal/intrusive_list.h"

namespace fiberloop::internal {

class Callbacks;
class Reactor;

class RemoteQueue {
 public:
  RemoteQueue(Reactor& reactor, Callbacks& callbacks) noexcept
      : reactor_(reactor), callbacks_(callbacks) {}
  // Drops whatever is still queued.
  ~RemoteQueue();
  RemoteQueue(const RemoteQueue&) = delete;
  RemoteQueue& operator=(const RemoteQueue&) = delete;

  // ---- any thread ----
  // Queues `fn` to run on the loop thread as a callback, and wakes the loop
  // if it is blocked. Throws: std::bad_alloc.
  void post(std::function<void()> fn);
  // Queues `item` (whoever owns it keeps it alive until it is handled) and
  // wakes the loop if it is blocked.
  void push(RemoteItem& item) noexcept;
  // Makes the loop's run return after the current iteration.
  void stop() noexcept;
  void add_keep_alive() noexcept { keep_alives_.fetch_add(1, std::memory_order_relaxed); }
  // Dropping the last one wakes the loop, so that a run() with nothing
  // else to do can return.
  void drop_keep_alive() noexcept;
  // A dump to stderr at the next iteration. Async-signal-safe.
  void request_dump() noexcept;

  // ---- the owner, before the queue goes ----
  // Waits until no other thread is still inside post(), push(), stop(),
  // drop_keep_alive() or request_dump(): their item or flag may have been
  // handled (and the loop may be ending) before they finished waking it.
  void wait_for_producers() const noexcept;

  // ---- the loop thread ----
  // Whether a post, wake-up, stop or dump request may be waiting. Cheap.
  bool pending() const noexcept { return pending_.load(std::memory_order_relaxed); }
  // Handles every item queued now: posts become callbacks (or, with `drop`,
  // as when the loop closes, are destroyed), wake-ups wake their fibers.
  void drain(bool drop);
  // drain(true), but the dropped posts' callables are moved to `dropped`
  // instead of destroyed: a closing loop destroys them only once it counts
  // as gone (what they hold may close another loop's stream, and that loop
  // may be closing too, waiting for this one: LoopParts::shutdown).
  void drain_keeping_dropped(std::vector<std::function<void()>>& dropped);
  bool take_stop() noexcept { return stop_requested_.exchange(false, std::memory_order_acq_rel); }
  bool take_dump_request() noexcept {
    return dump_requested_.exchange(false, std::memory_order_acq_rel);
  }
  std::size_t keep_alives() const noexcept { return keep_alives_.load(std::memory_order_acquire); }
  // Around a poll that may block: while `polling`, pushes write the wake-up
  // eventfd. Returns, on entering, whether something is already pending
  // (then the poll must not block).
  bool enter_poll() noexcept;
  void leave_poll() noexcept { polling_.store(false, std::memory_order_relaxed); }
  // True while the loop is blocked in its poll (the stall detector). Any thread.
  bool polling() const noexcept { return polling_.load(std::memory_order_relaxed); }

 private:
  // A post: the callable, in a node of the queue. Nodes are recycled
  // through `free_posts_` (below), so a steady stream of posts allocates
  // nothing but what std::function needs for a large callable.
  struct Post : RemoteItem {
    std::function<void()> fn;
    RemoteQueue* queue = nullptr;
  };
  static void handle_post(RemoteItem* item, bool drop);
  // Makes what was just handed over seen: wakes the loop if it is blocked.
  // Ends the hand-off that begin_handoff() began: the queue is not touched
  // after it.
  void notify() noexcept;
  void begin_handoff() noexcept { producers_.fetch_add(1, std::memory_order_seq_cst); }
  // Any thread: a node from the free list, or a new one.
  Post* take_post();
  // The loop thread: onto the batch that drain() hands back to the free
  // list at its end (or, past kMaxPosts, retired: freed once no producer
  // is inside a hand-off).
  void recycle(Post* post) noexcept;
  void flush_recycled() noexcept;
  void free_retired() noexcept;

  // The free list of posts: a Treiber stack that the loop thread pushes onto
  // and any thread pops from. Its head packs a node's address (low 48 bits)
  // with a count of pops (high 16 bits), so that a pop racing with another
  // pop and a push of the same node (ABA) fails its compare-exchange. Nodes
  // leave the list only by a pop, and the loop frees one it does not keep
  // only while no producer is inside post() (free_retired), so a racing pop
  // may read a stale `next` of a node but never freed memory.
  // A drain gives its posts back in one batch: the producers' line is
  // touched once per drain, not once per post. Nodes beyond kMaxPosts (a
  // burst's) are freed instead of kept.
  static constexpr std::size_t kMaxPosts = 4096;
  std::atomic<std::uint64_t> free_posts_{0};
  std::atomic<std::size_t> posts_made_{0};                      // alive now: queued, free or in use
  Post* recycled_ = nullptr;                                    // the batch (loop thread only)
  std::vector<std::function<void()>>* keep_dropped_ = nullptr;  // drain_keeping_dropped
  Post* recycled_last_ = nullptr;
  Post* retired_ = nullptr;  // past kMaxPosts, to free (loop thread only)

  Reactor& reactor_;
  Callbacks& callbacks_;
  MpscQueue queue_;
  // Threads inside a hand-off (see wait_for_producers), next to pending_,
  // which each of them writes anyway.
  std::atomic<std::uint32_t> producers_{0};
  std::atomic<bool> pending_{false};
  std::atomic<bool> polling_{false};
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> dump_requested_{false};
  std::atomic<std::size_t> keep_alives_{0};
};

}  // namespace fiberloop::internal
