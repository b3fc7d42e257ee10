// run_blocking()'s side of a loop: the worker threads (started lazily, one
// more only when every started one is busy, at most
// LoopOptions::blocking_threads), the count of jobs not yet finished, which
// keeps the loop from deciding that nothing can make progress, and the gate
// through which a finished job reaches the loop.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "loop/internal/remote_queue.h"
#include "loop/internal/spin_lock.h"
#include "loop/internal/thread_pool.h"

namespace fiberloop::internal {

// Where a worker hands a finished job back to its loop: the loop's
// cross-thread queue, until the loop's shutdown gives up on the jobs still
// running (close()). Shared by the loop and its jobs, so that a job that
// finishes after its loop is gone touches only the gate.
class CompletionGate {
 public:
  explicit CompletionGate(RemoteQueue& queue) noexcept : queue_(&queue) {}
  // Pushes `item` to the loop. Returns: false once closed (nothing pushed).
  bool deliver(RemoteItem& item) noexcept {
    SpinLockHold hold(lock_);
    if (queue_ == nullptr) return false;
    queue_->push(item);
    return true;
  }
  // No completion reaches the loop from now on.
  void close() noexcept {
    SpinLockHold hold(lock_);
    queue_ = nullptr;
  }

 private:
  struct SpinLockHold {
    explicit SpinLockHold(SpinLock& lock) noexcept : lock(lock) { lock.lock(); }
    ~SpinLockHold() { lock.unlock(); }
    SpinLock& lock;
  };
  SpinLock lock_;
  RemoteQueue* queue_;
};

class BlockingPool {
 public:
  BlockingPool(std::size_t max_threads, RemoteQueue& completions)
      : max_threads_(max_threads), gate_(std::make_shared<CompletionGate>(completions)) {}

  // Runs `job` on a worker. The loop counts it as work in progress until
  // finished() is called, on the loop thread.
  // Throws: std::system_error if no worker can be started; std::logic_error
  //         when the loop may have none (LoopOptions::blocking_threads 0).
  void submit(std::function<void()> job);
  void finished() noexcept { --outstanding_; }
  std::size_t outstanding() const noexcept { return outstanding_; }
  // What a job delivers its completion through (any thread).
  const std::shared_ptr<CompletionGate>& gate() const noexcept { return gate_; }

  // Shutdown: jobs not yet started are destroyed; join() waits for the rest.
  void drop_queued() noexcept;
  void join() noexcept { threads_.reset(); }
  // Shutdown, instead of join(), once the jobs still running have taken too
  // long: their completions are dropped on their workers, which are
  // detached and left to finish (and exit) on their own.
  void abandon() noexcept;

 private:
  std::size_t max_threads_;
  std::size_t outstanding_ = 0;
  std::shared_ptr<CompletionGate> gate_;
  std::unique_ptr<ThreadPool> threads_;
};

}  // namespace fiberloop::internal
