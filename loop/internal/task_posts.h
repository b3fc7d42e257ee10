// Posting what another thread does to a Task (start, cancel, drop, join)
// to its fiber's loop, against that loop's destruction: remote_task.cc
// posts the operations, remote_join.cc the joins.
#pragma once

#include <atomic>
#include <mutex>
#include <thread>

#include "loop/internal/fiber_record.h"
#include "loop/internal/remote_queue.h"
#include "loop/internal/scheduler.h"

namespace fiberloop::internal {

// Held to post a Task operation from another thread, and by a loop that
// is being destroyed to stop taking them and to let go of its records: so
// a loop read from a record under it is alive, and takes posts while it has
// not stopped.
std::mutex& task_posts_mutex() noexcept;

// Posts `item` to `f`'s loop from another thread: a Task may be dropped,
// cancelled or joined on one thread while its loop is destroyed on
// another. `look(loop)` runs first, under the lock, where that loop is
// alive (after it, the loop may be destroyed at any moment). Returns false
// if that loop no longer takes such posts (it is being destroyed), once its
// ~Scheduler has let go of `f` (set its loop to null): the caller then
// acts on `f` here.
template <class Look>
bool post_to_loop_of(FiberRecord& f, RemoteItem& item, Look look) {
  {
    std::lock_guard lock(task_posts_mutex());
    Scheduler* const loop = loop_of(f).load(std::memory_order_acquire);
    if (loop == nullptr) return false;
    if (loop->takes_task_posts()) {
      look(*loop);
      loop->post(item);
      return true;
    }
  }
  // ~Scheduler follows, and waits on no other thread.
  while (loop_of(f).load(std::memory_order_acquire) != nullptr) std::this_thread::yield();
  return false;
}

inline bool post_to_loop_of(FiberRecord& f, RemoteItem& item) {
  return post_to_loop_of(f, item, [](Scheduler&) {});
}

}  // namespace fiberloop::internal
