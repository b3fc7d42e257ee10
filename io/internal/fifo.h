// FIFOs for read_file and write_file, on the loop rather than on a worker.
// A FIFO's other end may never come, or stop reading: a worker blocked in
// open(2) or write(2) for it could be neither cancelled nor given back, and
// an open that ended after its caller had gone would reach a later writer
// or reader (taking its data, or showing it an end that came and went).
// Here every wait is the loop's, so a cancel or timeout ends it at once and
// closes what was opened. The workers open paths without ever waiting for
// a FIFO (open_without_waiting), and the loop does the rest.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "io/internal/opened_fd.h"

namespace fiberloop::internal {

// Whether `path` names a FIFO; through a symbolic link unless `follow` is
// false. (A look, not a promise: the path may change before it is opened.)
bool path_is_fifo(const std::string& path, bool follow = true);

// open(2) of `path` with `flags` (O_CLOEXEC added) and `mode`, on a worker,
// that never waits for a FIFO's other end, not even for a FIFO put at the
// path while it looks: a path that stat(2) does not call a device is opened
// with O_NONBLOCK, which is taken back once fstat(2) shows no FIFO (a file
// under a lease, EWOULDBLOCK, is then opened as asked, which waits for the
// lease's break). A device, whose open O_NONBLOCK changes (a tty, a drive
// without a medium), is opened as asked; so are O_PATH, O_DIRECTORY and
// O_CREAT | O_EXCL, which open no FIFO. Returns: the fd, with `seekable`
// set for a regular file or a block device; for a FIFO, `fifo` set and the
// fd non-blocking, or -1 when opened for writing without a reader yet
// (ENXIO, in `err`; the path may hold a file again by the next try);
// else fd -1 and open's errno in `err`.
Opened open_without_waiting(const std::string& path, int flags, mode_t mode);

// Reads the FIFO `fd` until its writers are gone (the kernel reports no
// hang-up before a first one came), waiting for data on the loop and
// yielding after each 64 KiB, so that a cancel or timeout reaches it under
// an endless writer too. Throws: std::system_error naming "read_file
// <path>" (ENOMEM past the memory the process may have); Cancelled;
// TimeoutError.
std::string read_fifo(int fd, const std::string& path);

// Writes all of `data` to the FIFO `fd`, waiting for room on the loop. A
// reader that has gone is EPIPE, never SIGPIPE (blocked around each write,
// and one the write raised taken back). What was written before a cancel
// or timeout stays written. Throws: std::system_error naming "write_file
// <path> (write)"; Cancelled; TimeoutError.
void write_fifo(int fd, const std::string& path, std::string_view data);

}  // namespace fiberloop::internal
