// A Task used from another thread: a fiber's state only ever changes on its
// own loop's thread, so what another thread does to it (start a fiber it
// spawned, cancel, drop the Task) travels through that loop's cross-thread
// queue. A join from elsewhere is remote_join.cc's.
#include <mutex>
#include <vector>

#include "loop/internal/loop_parts.h"
#include "loop/internal/record_pool.h"
#include "loop/internal/task_posts.h"

namespace fiberloop::internal {

std::mutex& task_posts_mutex() noexcept {
  static std::mutex m;
  return m;
}

namespace {

// One Task operation, queued for the fiber's loop. A start or a drop holds
// the Task's reference to the record; a cancel holds none (the Task may be
// dropped on the loop's thread before it runs, and the record handed to a
// new fiber), so it names the fiber by its id too.
struct QueuedTaskOp : RemoteItem {
  FiberRecord* fiber = nullptr;
  FiberId id = 0;
  int op = 0;
};

}  // namespace

void Scheduler::stop_taking_task_posts() noexcept {
  std::lock_guard lock(task_posts_mutex());
  takes_task_posts_ = false;
}

void Scheduler::let_go_of_records(const std::vector<FiberRecord*>& live) noexcept {
  std::lock_guard lock(task_posts_mutex());
  for (FiberRecord* f : live) loop_of(*f).store(nullptr, std::memory_order_release);
}

bool Scheduler::post_task_op(FiberRecord& f, TaskOp op) {
  auto* item = new QueuedTaskOp;
  item->fiber = &f;
  item->id = f.id;
  item->op = static_cast<int>(op);
  item->handle = [](RemoteItem* base, bool /*drop: run regardless, they free records*/) {
    auto* queued = static_cast<QueuedTaskOp*>(base);
    // A record stays in this loop's pools while the loop lives: free
    // (refs 0) or reused (another id) if that fiber's Task has gone.
    const FiberRecord& f = *queued->fiber;
    if (f.refs != 0 && f.id == queued->id) {
      run_task_op(*queued->fiber, static_cast<TaskOp>(queued->op));
    }
    delete queued;
  };
  if (op == TaskOp::kStart) {
    f.scheduler->post(*item);
    return true;
  }
  if (post_to_loop_of(f, *item)) return true;
  delete item;
  return false;
}

void Scheduler::run_task_op(FiberRecord& f, TaskOp op) noexcept {
  switch (op) {
    case TaskOp::kStart:
      f.scheduler->start_here(f);
      return;
    case TaskOp::kCancel:
      f.scheduler->cancel(f);
      return;
    case TaskOp::kDrop:
      drop_here(f);
      return;
  }
}

void Scheduler::cancel_task(FiberRecord& f) {
  // Done: a no-op, as documented (and no post to a loop that may be closing).
  if (f.done_flag.load(std::memory_order_acquire)) return;
  Scheduler* home = loop_of(f).load(std::memory_order_acquire);
  if (home == nullptr) return;  // its loop is gone: it has finished or was abandoned
  if (home == tls_scheduler) return home->cancel(f);
  (void)post_task_op(f, TaskOp::kCancel);  // refused: its loop is gone, as above
}

}  // namespace fiberloop::internal
