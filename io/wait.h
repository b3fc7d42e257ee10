// Parking on any fd: pipes, eventfds, a foreign library's sockets.
//
//   fiberloop::wait_readable(pipe_fd);   // then read(2) will not block
#pragma once

#include "fiber/internal/require_cxx20.h"  // IWYU pragma: keep

namespace fiberloop {

// Parks the calling fiber until `fd` is readable (or has hung up), or until
// the enclosing with_timeout() deadline. A duplicate of the fd is registered
// with the loop for this one wait (four syscalls: for fds fiberloop does not
// own; its own sockets wait without them), so the fd stays the caller's.
// Throws: Cancelled; TimeoutError; std::system_error naming the fd (EBADF if
//         it is not open); std::logic_error outside a fiber.
void wait_readable(int fd);
// As wait_readable(), until `fd` is writable.
void wait_writable(int fd);

}  // namespace fiberloop
