// run_blocking(): jobs on worker threads, and the fiber that waits for one.
#include "loop/internal/blocking_pool.h"

#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>
#include <vector>

#include "loop/internal/loop_parts.h"
#include "loop/run_blocking.h"

namespace fiberloop::internal {

void BlockingPool::submit(std::function<void()> job, JobRecord& record) {
  if (max_threads_ == 0) {  // nobody would ever run it
    throw std::logic_error(
        "a job for a worker thread (run_blocking, resolve, file I/O): this loop has none "
        "(LoopOptions::blocking_threads is 0); give it at least 1");
  }
  if (!threads_) threads_ = std::make_unique<ThreadPool>(max_threads_, this);
  ++outstanding_;
  running_.push_back(record);
  try {
    threads_->submit(std::move(job));
  } catch (...) {
    finished(record);
    throw;
  }
}

bool BlockingPool::uses_caller_memory() const noexcept {
  bool any = false;
  running_.for_each([&any](const JobRecord& r) { any = any || r.uses_caller_memory; });
  return any;
}

std::string BlockingPool::describe_running() const noexcept {
  std::string out;
  try {
    running_.for_each([&out](const JobRecord& r) {
      out +=
          "  " + r.what + ", for fiber " + std::to_string(r.fiber_id) +
          (r.uses_caller_memory ? " (which waits for it: it works on that fiber's memory)" : "") +
          "\n";
    });
  } catch (...) {  // std::bad_alloc
    out.clear();
  }
  return out;
}

void BlockingPool::drop_queued() noexcept {
  if (threads_) threads_->drop_queued();
}

void BlockingPool::abandon() noexcept {
  // The records go first: a worker refused by the gate destroys its own.
  while (!running_.empty()) running_.pop_front();
  gate_->close();
  if (!threads_) return;
  ThreadPool* threads = threads_.release();
  threads->abandon();
  // Never freed (its workers still use it), and kept reachable so that leak
  // checkers see the leak is meant.
  static std::mutex lock;
  static auto* leaked = new std::vector<ThreadPool*>;
  std::lock_guard hold(lock);
  leaked->push_back(threads);
}

void run_on_worker(std::function<void()> work, bool interruptible, std::string what) {
  FiberRecord& self = running_fiber_or_throw(what.c_str());  // "read_file /etc/x: no Loop ..."
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
  // The worker hands it back to the loop as the job's completion: an item
  // of the loop's queue (not a post), handled even by a closing loop, whose
  // file operations wait out their jobs however they are interrupted.
  struct Waiter : RemoteItem, JobRecord {
    FiberRecord* fiber = nullptr;
    LoopParts* parts = nullptr;
    bool queued = false;               // the pool took the job
    bool dropped = false;              // the closing loop destroyed the job unrun
    std::shared_ptr<Waiter> in_queue;  // keeps it alive from push to handling
  };
  // The job's part. The closing loop destroys a job not yet started (on the
  // loop thread) instead of running it: that wakes its fiber, which is then
  // cancelled like any other, since nothing uses its buffers.
  struct Job {
    std::function<void()> work;
    std::shared_ptr<Waiter> waiter;
    bool started = false;  // touched by the worker only
    ~Job() {
      if (started || !waiter->queued) return;
      waiter->parts->pool.finished(*waiter);
      if (FiberRecord* f = std::exchange(waiter->fiber, nullptr)) {
        waiter->dropped = true;
        waiter->parts->scheduler.wake(*f);
      }
    }
  };
  auto waiter = std::make_shared<Waiter>();
  waiter->parts = &parts;
  waiter->what = std::move(what);
  waiter->fiber_id = self.id;
  waiter->uses_caller_memory = !interruptible;
  waiter->handle = [](RemoteItem* item, bool /*drop: a completion is never dropped*/) {
    auto& w = *static_cast<Waiter*>(item);  // on the loop thread
    const std::shared_ptr<Waiter> done = std::move(w.in_queue);
    w.parts->pool.finished(w);
    // (A fiber abandoned meanwhile is not parked: the wake does nothing.)
    if (FiberRecord* f = std::exchange(w.fiber, nullptr)) w.parts->scheduler.wake(*f);
  };
  auto job = std::make_shared<Job>();
  job->work = std::move(work);
  job->waiter = waiter;
  parts.pool.submit(
      [job = std::move(job), gate = parts.pool.gate()]() mutable {  // on a worker
        job->started = true;
        job->work();  // catches its own exceptions
        // Nothing of the job outlives the hand-off: what it captured is released
        // here, before the fiber it reports to can resume and free what it saw.
        job->work = nullptr;
        Waiter& w = *job->waiter;
        w.in_queue = std::move(job->waiter);
        job = nullptr;
        // noexcept: no allocation. Refused once the loop's shutdown gave up on
        // this job: nobody waits for it, and the loop may be gone.
        if (!gate->deliver(w)) w.in_queue.reset();
      },
      *waiter);
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
