#include "io/wait.h"

#include <fcntl.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <system_error>

#include "io/internal/io_handle.h"
#include "loop/internal/reactor.h"

namespace fiberloop {
namespace {

// Registers the fd for one wait and unregisters it after, without closing
// it: the caller owns it.
void wait_on(int fd, internal::IoHandle::Direction dir, const char* op) {
  if (internal::Scheduler::current() == nullptr) internal::throw_no_loop(op);  // before the copy
  internal::check_pollable(fd, op);  // the same answer on both backends
  // The handle owns (and closes) this copy; close-on-exec, as every fd
  // fiberloop opens, so that no child spawned meanwhile inherits it.
  const int dup_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) {
    const int err = errno;
    internal::throw_io_error(err, std::string(op) + " fd " + std::to_string(fd));
  }
  std::optional<internal::IoHandle> handle;
  try {
    handle.emplace(dup_fd);
  } catch (const std::system_error& e) {  // named the copy: name the caller's fd
    internal::throw_io_error(e.code().value(), std::string(op) + " fd " + std::to_string(fd));
  }
  handle->set_dump_fd(fd);
  handle->wait(dir, op);
}

}  // namespace

namespace internal {
void wait_readable_as(int fd, const char* op) { wait_on(fd, IoHandle::Direction::kRead, op); }
}  // namespace internal

void wait_readable(int fd) { wait_on(fd, internal::IoHandle::Direction::kRead, "wait_readable"); }

void wait_writable(int fd) { wait_on(fd, internal::IoHandle::Direction::kWrite, "wait_writable"); }

}  // namespace fiberloop
