// The reactor: polling, and Loop::add_reader / add_writer, callbacks on fd
// readiness, level-triggered, as asyncio's selector loop has them.
#include "loop/internal/reactor.h"

#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

#include "loop/internal/callbacks.h"

namespace fiberloop::internal {

void check_pollable(int fd, const char* what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    throw std::system_error(err, std::generic_category(),
                            std::string(what) + " fd " + std::to_string(fd) +
                                (err == EBADF ? " (not an open file descriptor)" : ""));
  }
  // Sockets, pipes, eventfds and the like always poll. A file, directory or
  // device may not: epoll refuses it (EPERM) where an io_uring poll would
  // report it ready at once, so the kernel's own epoll answers for both.
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISCHR(st.st_mode) &&
      !S_ISBLK(st.st_mode)) {
    return;
  }
  // (A scratch epoll for the question, closed at once: files and devices
  // are seldom waited on, and a lasting fd would be one more to inherit.)
  const int scratch = ::epoll_create1(EPOLL_CLOEXEC);
  if (scratch < 0) return;  // the backend answers
  epoll_event ev{};
  ev.events = EPOLLIN;
  const bool refused = ::epoll_ctl(scratch, EPOLL_CTL_ADD, fd, &ev) != 0 && errno == EPERM;
  ::close(scratch);
  if (!refused) return;
  throw std::system_error(EPERM, std::generic_category(),
                          std::string(what) + " fd " + std::to_string(fd) +
                              " (the kernel cannot wait for its readiness: a regular file, a "
                              "directory or a device without poll support is always ready; "
                              "read a file with read_file() or File)");
}

void Reactor::poll(std::optional<Duration> timeout) {
  for (const Readiness& r : poller_->wait(timeout)) r.target->ready(r.target, r);
}

void Reactor::on_fd_watch_ready(ReadinessTarget* self, const Readiness& r) {
  auto& w = *static_cast<FdWatch*>(self);
  // Queued, not called: no user code runs while the poll's batch is
  // dispatched. Each holds its callback weakly: a remove_reader (or
  // remove_writer, or a new add_) made before it runs cancels it, as
  // asyncio's remove_reader cancels its handle (an earlier callback of the
  // same batch may close the fd).
  Callbacks& callbacks = w.reactor->callbacks_;
  const auto queue = [&callbacks](const std::shared_ptr<std::function<void()>>& fn) {
    callbacks.call_soon([weak = std::weak_ptr(fn)] {
      if (const auto f = weak.lock()) (*f)();
    });
  };
  if (w.on_read && (r.readable || r.hangup)) queue(w.on_read);
  if (w.on_write && (r.writable || r.hangup)) queue(w.on_write);
}

void Reactor::drop_fd_callbacks() noexcept {
  for (const auto& [fd, watch] : fd_watches_) {
    poller_->remove(fd);
    --waiters_;
  }
  fd_watches_.clear();
}

bool Reactor::set_fd_callback(int fd, Interest direction, std::function<void()> fn) {
  auto it = fd_watches_.find(fd);
  const bool existed = it != fd_watches_.end();
  if (!fn && !existed) return false;
  const char* const what = direction == Interest::kWrite ? "Loop::add_writer" : "Loop::add_reader";
  if (!existed) check_pollable(fd, what);
  if (!existed) {
    auto watch = std::make_unique<FdWatch>();
    watch->reactor = this;
    watch->ready = &Reactor::on_fd_watch_ready;
    it = fd_watches_.emplace(fd, std::move(watch)).first;
  }
  FdWatch& w = *it->second;
  auto& slot = direction == Interest::kWrite ? w.on_write : w.on_read;
  const bool had = slot != nullptr;
  slot = fn ? std::make_shared<std::function<void()>>(std::move(fn)) : nullptr;
  if (!w.on_read && !w.on_write) {
    poller_->remove(fd);
    fd_watches_.erase(it);
    --waiters_;
    return had;
  }
  const Interest interest = (w.on_read ? Interest::kRead : Interest::kNone) |
                            (w.on_write ? Interest::kWrite : Interest::kNone);
  try {
    if (existed) {
      poller_->modify(fd, &w, interest);
    } else {
      poller_->add_level_triggered(fd, &w, interest);
    }
  } catch (const std::system_error& e) {
    if (!existed) fd_watches_.erase(it);
    if (e.code() != std::errc::file_exists) throw;
    throw std::system_error(e.code(), std::string(what) + " fd " + std::to_string(fd) +
                                          " (this loop waits on it already: a fiberloop "
                                          "socket's fd; wait on the socket itself)");
  } catch (...) {
    if (!existed) fd_watches_.erase(it);
    throw;
  }
  if (!existed) ++waiters_;
  return had;
}

}  // namespace fiberloop::internal
