#include "loop/internal/thread_pool.h"

#include <string>
#include <utility>

#include "loop/internal/own_thread.h"

namespace fiberloop::internal {
namespace {
thread_local const void* tls_worker_owner = nullptr;
}  // namespace

bool on_blocking_worker() noexcept { return tls_worker_owner != nullptr; }
const void* blocking_worker_owner() noexcept { return tls_worker_owner; }

ThreadPool::~ThreadPool() {
  stop();
  for (std::thread& t : threads_) t.join();
}

void ThreadPool::abandon() noexcept {
  stop();
  for (std::thread& t : threads_) t.detach();
}

void ThreadPool::stop() noexcept {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
}

void ThreadPool::submit(std::function<void()> job) {
  std::unique_lock lock(mutex_);
  jobs_.push_back(std::move(job));
  if (idle_ >= jobs_.size() || threads_.size() >= max_threads_) {
    lock.unlock();
    ready_.notify_one();
    return;
  }
  try {
    threads_.push_back(
        start_own_thread("run_blocking worker " + std::to_string(threads_.size() + 1),
                         "fl-blocking", [this] { work(); }));
  } catch (...) {
    if (threads_.empty()) {  // nobody would ever run the job
      jobs_.pop_back();
      throw;
    }
  }
}

void ThreadPool::drop_queued() noexcept {
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard lock(mutex_);
    dropped.swap(jobs_);
  }
}

std::size_t ThreadPool::threads() const {
  std::lock_guard lock(mutex_);
  return threads_.size();
}

void ThreadPool::work() {
  tls_worker_owner = owner_;
  std::unique_lock lock(mutex_);
  for (;;) {
    ++idle_;
    ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    --idle_;
    if (jobs_.empty()) return;  // stopping, and nothing left to run
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();  // jobs catch their own exceptions
    lock.lock();
  }
}

}  // namespace fiberloop::internal
