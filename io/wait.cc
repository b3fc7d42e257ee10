#include "io/wait.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "io/internal/io_handle.h"

namespace fiberloop {
namespace {

// Registers the fd for one wait and unregisters it after, without closing
// it: the caller owns it.
void wait_on(int fd, internal::IoHandle::Direction dir, const char* op) {
  if (internal::Scheduler::current() == nullptr) internal::throw_no_loop(op);  // before the copy
  // The handle owns (and closes) this copy; close-on-exec, as every fd
  // fiberloop opens, so that no child spawned meanwhile inherits it.
  const int dup_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) internal::throw_io_error(errno, std::string(op) + " fd " + std::to_string(fd));
  internal::IoHandle handle(dup_fd);
  handle.set_dump_fd(fd);
  handle.wait(dir, op);
}

}  // namespace

void wait_readable(int fd) { wait_on(fd, internal::IoHandle::Direction::kRead, "wait_readable"); }

void wait_writable(int fd) { wait_on(fd, internal::IoHandle::Direction::kWrite, "wait_writable"); }

}  // namespace fiberloop
