// FIFOs for read_file and write_file, on the loop rather than on a worker.
// A FIFO's other end may never come, or stop reading: a worker blocked in
// open(2) or write(2) for it could be neither cancelled nor given back, and
// an open that ended after its caller had gone would reach a later writer
// or reader (taking its data, or showing it an end that came and went).
// Here every wait is the loop's, so a cancel or timeout ends it at once and
// closes what was opened. A worker looks the path up and opens anything but
// a FIFO (open_on_worker); a FIFO is opened by the loop, through that
// look-up, only when its fiber is there to read or write it.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "io/internal/opened_fd.h"

namespace fiberloop::internal {

// open(2) of `path` with `flags` (O_CLOEXEC added) and `mode`, on a worker,
// that never opens a FIFO, not even one put at the path while it looks:
// the path is looked up once with O_PATH (which opens nothing: a FIFO's
// other end sees no open), fstat(2) says what that names, and anything but
// a FIFO is then opened as asked through that very lookup (reopen), so what
// was looked at is what is opened. A path that does not exist is created
// with O_CREAT | O_EXCL when `flags` has O_CREAT (a symbolic link to
// nothing, as open(2) does: its target). O_PATH, O_DIRECTORY (and
// O_TMPFILE) and O_CREAT | O_EXCL open no FIFO and are passed on as they
// are. Returns: the fd, with `seekable` set for a regular file or a block
// device; for a FIFO, `fifo` set and its O_PATH fd, for the loop to reopen
// when its fiber is there to read or write; else fd -1 and the errno in
// `err` (ELOOP for a link under O_NOFOLLOW).
Opened open_on_worker(const std::string& path, int flags, mode_t mode);

// open(2) of the file that the O_PATH fd `path_fd` names, through
// /proc/self/fd (no look-up of `path` again: the same inode, and nothing on
// a file system that could stall), with `flags` (O_CLOEXEC added) and
// `mode`. Without /proc, `path` itself. Returns: the fd, or -1 with errno
// set (ENXIO: a FIFO opened O_WRONLY | O_NONBLOCK without a reader).
int reopen(int path_fd, const std::string& path, int flags, mode_t mode = 0);

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
