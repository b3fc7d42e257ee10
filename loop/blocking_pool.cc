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
  // Nothing new runs once the loop is closing: the fiber is cancelled here,
  // or (unwinding) waits for the shutdown to abandon it.
  const auto refuse_while_closing = [&] {
    scheduler.park(WaitKind::kBlockingJob);
    FIBERLOOP_CHECK_FIBER(self, false, "run_blocking: a closing loop woke a fiber it never ran");
  };
  if (scheduler.closing()) refuse_while_closing();
  // Who waits for the job: cleared when the fiber stops waiting (cancelled,
  // or timed out), so that the completion wakes nobody. Set once the job is
  // queued: a job the pool refused is destroyed unrun with nobody waiting.
  struct Waiter {
    FiberRecord* fiber = nullptr;
    bool queued = false;   // the pool took the job
    bool dropped = false;  // the closing loop destroyed the job unrun
  };
  // The job's part. The closing loop destroys a job not yet started (on the
  // loop thread) instead of running it: that wakes its fiber, which is then
  // cancelled like any other, since nothing uses its buffers.
  struct Job {
    std::function<void()> work;
    std::shared_ptr<Waiter> waiter;
    LoopParts* parts = nullptr;
    bool started = false;  // touched by the worker only
    ~Job() {
      if (started || !waiter->queued) return;
      parts->pool.finished();
      if (FiberRecord* f = std::exchange(waiter->fiber, nullptr)) {
        waiter->dropped = true;
        parts->scheduler.wake(*f);
      }
    }
  };
  auto waiter = std::make_shared<Waiter>();
  auto job = std::make_shared<Job>();
  job->work = std::move(work);
  job->waiter = waiter;
  job->parts = &parts;
  parts.pool.submit([job = std::move(job)]() mutable {  // on a worker
    job->started = true;
    job->work();  // catches its own exceptions
    // Nothing of the job outlives the hand-off: what it captured is released
    // here, before the fiber it reports to can resume and free what it saw.
    job->work = nullptr;
    job->parts->remote.post([waiter = job->waiter, parts = job->parts] {  // on the loop thread
      parts->pool.finished();
      if (FiberRecord* f = std::exchange(waiter->fiber, nullptr)) parts->scheduler.wake(*f);
    });
    job = nullptr;
  });
  waiter->queued = true;
  waiter->fiber = &self;
  if (!interruptible) {
    // Until the completion wakes us; an interrupt wakes us early but stays
    // pending, and we go back to waiting.
    while (!scheduler.park_uninterruptible(WaitKind::kBlockingJob)) {
    }
  } else {
    try {
      scheduler.park(WaitKind::kBlockingJob);  // until the completion wakes us
    } catch (...) {
      waiter->fiber = nullptr;  // the job finishes on its own; its result is dropped
      throw;
    }
  }
  if (waiter->dropped) refuse_while_closing();
}

}  // namespace fiberloop::internal
