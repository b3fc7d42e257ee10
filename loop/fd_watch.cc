// Loop::add_reader / add_writer: callbacks on fd readiness, level-triggered,
// as the seeds' selector loop and asyncio have them.
#include <memory>
#include <utility>

#include "loop/internal/loop_core.h"
#include "loop/loop.h"

namespace fiberloop::internal {

bool LoopCore::set_fd_callback(int fd, bool write, std::function<void()> fn) {
  check_thread(write ? "Loop::add_writer" : "Loop::add_reader");
  auto it = fd_watches_.find(fd);
  const bool existed = it != fd_watches_.end();
  if (!fn && !existed) return false;
  if (!existed) {
    auto watch = std::make_unique<FdWatch>();
    watch->loop = this;
    watch->ready = [](ReadinessTarget* self, const Readiness& r) {
      auto& w = *static_cast<FdWatch*>(self);
      // Queued, not called: no user code runs while the poll's batch is dispatched.
      if (w.on_read && (r.readable || r.hangup)) w.loop->call_soon([f = w.on_read] { (*f)(); });
      if (w.on_write && (r.writable || r.hangup)) w.loop->call_soon([f = w.on_write] { (*f)(); });
    };
    it = fd_watches_.emplace(fd, std::move(watch)).first;
  }
  FdWatch& w = *it->second;
  auto& slot = write ? w.on_write : w.on_read;
  const bool had = slot != nullptr;
  slot = fn ? std::make_shared<std::function<void()>>(std::move(fn)) : nullptr;
  if (!w.on_read && !w.on_write) {
    poller_.remove(fd);
    fd_watches_.erase(it);
    --fd_waiters_;
    return had;
  }
  try {
    poller_.watch(fd, &w, w.on_read != nullptr, w.on_write != nullptr, existed);
  } catch (...) {
    if (!existed) fd_watches_.erase(it);
    throw;
  }
  if (!existed) ++fd_waiters_;
  return had;
}

}  // namespace fiberloop::internal

namespace fiberloop {

void Loop::add_reader(int fd, std::function<void()> fn) {
  core_->set_fd_callback(fd, false, std::move(fn));
}
bool Loop::remove_reader(int fd) { return core_->set_fd_callback(fd, false, nullptr); }
void Loop::add_writer(int fd, std::function<void()> fn) {
  core_->set_fd_callback(fd, true, std::move(fn));
}
bool Loop::remove_writer(int fd) { return core_->set_fd_callback(fd, true, nullptr); }

}  // namespace fiberloop
