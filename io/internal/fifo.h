// FIFOs for read_file and write_file, on the loop rather than on a worker.
// A FIFO's other end may never come, or stop reading: a worker blocked in
// open(2) or write(2) for it could be neither cancelled nor given back, and
// an open that ended after its caller had gone would reach a later writer
// or reader (taking its data, or showing it an end that came and went).
// Here every wait is the loop's, so a cancel or timeout ends it at once and
// closes what was opened. A worker opens anything but a FIFO
// (open_on_worker); a FIFO is opened by the loop, only when its fiber is
// there to read or write it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <string>
#include <string_view>

#include "io/internal/opened_fd.h"

namespace fiberloop::internal {

// Whether `path` names a FIFO; through a symbolic link unless `follow` is
// false. (A look, not a promise: the path may change before it is opened.)
bool path_is_fifo(const std::string& path, bool follow = true);

// How the loop's open of a FIFO went.
enum class FifoOpen {
  kOpened,    // *fd is the FIFO, non-blocking
  kNoReader,  // for writing, and no reader yet (ENXIO)
  kNotAFifo,  // something else is at the path now, or nothing: the caller's
              // worker path takes it (and reports what open(2) says)
  kFailed,    // a FIFO that open(2) refuses (EACCES, EMFILE...): *fd is the errno
};

// open(2) of the FIFO at `path` for O_RDONLY or O_WRONLY (`flags`, which
// may add O_CREAT, with `mode`), non-blocking, so that it never waits for
// the other end. (A file it created, the FIFO gone: closed, kNotAFifo.)
FifoOpen open_fifo(const std::string& path, int flags, int* fd, mode_t mode = 0);

// The FIFO at `path` opened for writing once it has a reader, which the
// kernel announces to nobody: tried again every 100 us at first, every
// 10 ms at most. Returns: the fd (non-blocking), or -1 if no FIFO is at the
// path any more. Throws: std::system_error naming "write_file <path>
// (open)" if open(2) refuses it; Cancelled, TimeoutError (while it waits).
int open_fifo_for_writing(const std::string& path);

// open(2) of `path` with `flags` (O_CLOEXEC added) and `mode`, on a worker,
// never waiting for a FIFO's other end. A FIFO is not opened at all but
// left to the loop (`fifo` set, fd -1), which opens it when its fiber is
// there (open_fifo). Anything else is opened by its path with every flag
// asked (the kernel's rules for links and sticky directories apply), plus
// O_NONBLOCK unless stat(2) calls it a device, whose open O_NONBLOCK
// changes (a tty, a drive without a medium): a FIFO put at the path since
// the look is then not waited for (opened, `fifo` set and the fd
// non-blocking; or, for writing without a reader, ENXIO with `fifo` set).
// O_NONBLOCK is taken back for the rest; a file under a lease is tried
// again until its holder lets go, or until `abandoned` (the caller has
// gone: ECANCELED). O_PATH, O_DIRECTORY (O_TMPFILE) and O_CREAT | O_EXCL
// open no FIFO and are passed on as they are. Returns: the fd, with
// `seekable` set for a regular file or a block device; else fd -1 and the
// errno in `err`.
Opened open_on_worker(const std::string& path, int flags, mode_t mode,
                      const std::atomic<bool>& abandoned);

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
