// run_blocking(): jobs on worker threads, and the fiber that waits for one.
#include "loop/internal/blocking_pool.h"

#include <memory>
#include <utility>

#include "loop/internal/loop_parts.h"
#include "loop/run_blocking.h"

namespace fiberloop::internal {

void BlockingPool::submit(std::function<void()> job) {
  if (!threads_) threads_ = std::make_unique<ThreadPool>(max_threads_);
  ++outstanding_;
  try {
    threads_->submit(std::move(job));
  } catch (...) {
    --outstanding_;
    throw;
  }
}

void BlockingPool::drop_queued() noexcept {
  if (threads_) threads_->drop_queued();
}

void run_on_worker(std::function<void()> work, bool interruptible) {
  FiberRecord& self = running_fiber_or_throw("run_blocking");
  Scheduler& scheduler = *self.scheduler;
  LoopParts& parts = scheduler.parts();
  if (scheduler.closing()) {
    // Nothing new runs once the loop is closing: the fiber is cancelled
    // here, or (unwinding) waits for the shutdown to abandon it.
    scheduler.park(WaitKind::kBlockingJob);
    FIBERLOOP_CHECK_FIBER(self, false, "run_blocking: a closing loop woke a fiber it never ran");
  }
  // Who waits for the job: cleared when the fiber stops waiting (cancelled,
  // or timed out), so that the completion wakes nobody.
  struct Waiter {
    FiberRecord* fiber;
  };
  auto waiter = std::make_shared<Waiter>(Waiter{&self});
  parts.pool.submit([work = std::move(work), waiter, &parts]() mutable {  // on a worker
    work();  // catches its own exceptions
    // Nothing of the job outlives the hand-off: what it captured is released
    // here, before the fiber it reports to can resume and free what it saw.
    work = nullptr;
    parts.remote.post([waiter, &parts] {  // back on the loop thread
      parts.pool.finished();
      if (FiberRecord* f = std::exchange(waiter->fiber, nullptr)) parts.scheduler.wake(*f);
    });
  });
  if (!interruptible) {
    // Until the completion wakes us; an interrupt wakes us early but stays
    // pending, and we go back to waiting.
    while (!scheduler.park_uninterruptible(WaitKind::kBlockingJob)) {
    }
    return;
  }
  try {
    scheduler.park(WaitKind::kBlockingJob);  // until the completion wakes us
  } catch (...) {
    waiter->fiber = nullptr;  // the job finishes on its own; its result is dropped
    throw;
  }
}

}  // namespace fiberloop::internal
