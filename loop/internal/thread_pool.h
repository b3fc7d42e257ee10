// The loop's worker threads for run_blocking(): started lazily, one more only
// when every started one is busy, at most `max_threads`; joined when the pool
// is destroyed (after the jobs already queued have run), or detached by
// abandon().
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fiberloop::internal {

// Whether this thread is a ThreadPool's worker (a run_blocking job's).
bool on_blocking_worker() noexcept;
// The `owner` of the ThreadPool whose worker this thread is, or nullptr.
const void* blocking_worker_owner() noexcept;

class ThreadPool {
 public:
  // `owner` (not null) tags the workers (blocking_worker_owner()).
  ThreadPool(std::size_t max_threads, const void* owner)
      : max_threads_(max_threads), owner_(owner) {}
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `job` to run on a worker thread.
  // Throws: std::system_error if no thread can be started and none exists.
  void submit(std::function<void()> job);

  std::size_t threads() const;

  // Destroys the jobs not yet started (the loop is closing).
  void drop_queued() noexcept;
  // Instead of the destructor, when the jobs still running may never end:
  // detaches the workers, which exit once their jobs return. The pool must
  // then never be destroyed (they use it).
  void abandon() noexcept;

 private:
  void stop() noexcept;  // wakes the idle workers to exit
  void work();

  const std::size_t max_threads_;
  const void* const owner_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace fiberloop::internal
