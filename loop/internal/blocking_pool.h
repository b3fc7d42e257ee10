// run_blocking()'s side of a loop: the worker threads (started lazily, one
// more only when every started one is busy, at most
// LoopOptions::blocking_threads) and the count of jobs not yet finished,
// which keeps the loop from deciding that nothing can make progress.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "loop/internal/thread_pool.h"

namespace fiberloop::internal {

class BlockingPool {
 public:
  explicit BlockingPool(std::size_t max_threads) noexcept : max_threads_(max_threads) {}

  // Runs `job` on a worker. The loop counts it as work in progress until
  // finished() is called, on the loop thread.
  // Throws: std::system_error if no worker can be started; std::logic_error
  //         when the loop may have none (LoopOptions::blocking_threads 0).
  void submit(std::function<void()> job);
  void finished() noexcept { --outstanding_; }
  std::size_t outstanding() const noexcept { return outstanding_; }
  // Shutdown: jobs not yet started are destroyed; join() waits for the rest.
  void drop_queued() noexcept;
  void join() noexcept { threads_.reset(); }

 private:
  std::size_t max_threads_;
  std::size_t outstanding_ = 0;
  std::unique_ptr<ThreadPool> threads_;
};

}  // namespace fiberloop::internal
