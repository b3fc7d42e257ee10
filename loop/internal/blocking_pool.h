// run_blocking()'s side of a loop: the worker threads (started lazily, one
// more only when every started one is busy, at most
// LoopOptions::blocking_threads), the count of jobs not yet finished, which
// keeps the loop from deciding that nothing can make progress, and the gate
// through which a finished job reaches the loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "loop/internal/intrusive_list.h"
#include "loop/internal/remote_queue.h"
#include "loop/internal/thread_pool.h"

namespace fiberloop::internal {

// Where a worker hands a finished job back to its loop: the loop's
// cross-thread queue, until the loop's shutdown gives up on the jobs still
// running (close()). Shared by the loop and its jobs, so that a job that
// finishes after its loop is gone touches only the gate. A mutex, not a
// spin lock: a push may write the loop's eventfd.
class CompletionGate {
 public:
  explicit CompletionGate(RemoteQueue& queue) noexcept : queue_(&queue) {}
  // Pushes `item` to the loop. Returns: false once closed (nothing pushed).
  bool deliver(RemoteItem& item) noexcept {
    std::lock_guard hold(lock_);
    if (queue_ == nullptr) return false;
    queue_->push(item);
    return true;
  }
  // No completion reaches the loop from now on.
  void close() noexcept {
    std::lock_guard hold(lock_);
    queue_ = nullptr;
  }

 private:
  std::mutex lock_;
  RemoteQueue* queue_;
};

// A job on a worker as its loop sees it, from submit() until its completion
// (or its drop) is handled: what the shutdown names when it gives up on it.
struct JobRecord : ListHook<> {
  std::string what;            // "run_blocking", "File::open /tmp/fifo", ...
  std::uint64_t fiber_id = 0;  // the fiber that asked
  // The caller waits it out (uninterruptible): the job works on the
  // caller's memory (a buffer to fill), so the loop cannot let go of it.
  bool uses_caller_memory = false;
};

class BlockingPool {
 public:
  BlockingPool(std::size_t max_threads, RemoteQueue& completions)
      : max_threads_(max_threads), gate_(std::make_shared<CompletionGate>(completions)) {}

  // Runs `job` on a worker. The loop counts it as work in progress, listed
  // as `record`, until finished() is called, on the loop thread.
  // Throws: std::system_error if no worker can be started; std::logic_error
  //         when the loop may have none (LoopOptions::blocking_threads 0).
  void submit(std::function<void()> job, JobRecord& record);
  void finished(JobRecord& record) noexcept {
    record.unlink();
    --outstanding_;
  }
  std::size_t outstanding() const noexcept { return outstanding_; }
  // Whether the calling thread is one of this pool's workers. Any thread.
  bool runs_this_thread() const noexcept { return blocking_worker_owner() == this; }
  // Whether a job not yet finished works on its caller's memory.
  bool uses_caller_memory() const noexcept;
  // One line per job not yet finished, for the shutdown's report; empty if
  // it cannot be built (std::bad_alloc: the report then gives the count).
  std::string describe_running() const noexcept;
  // What a job delivers its completion through (any thread).
  const std::shared_ptr<CompletionGate>& gate() const noexcept { return gate_; }

  // Shutdown: jobs not yet started are destroyed; join() waits for the rest.
  void drop_queued() noexcept;
  void join() noexcept { threads_.reset(); }
  // Shutdown, instead of join(), once the jobs still running have taken too
  // long (none of them uses_caller_memory()): their completions are dropped
  // on their workers, which are detached and left to finish (and exit) on
  // their own.
  void abandon() noexcept;

 private:
  std::size_t max_threads_;
  std::size_t outstanding_ = 0;
  std::shared_ptr<CompletionGate> gate_;
  std::unique_ptr<ThreadPool> threads_;
  IntrusiveList<JobRecord> running_;  // submitted, not yet finished()
};

}  // namespace fiberloop::internal
