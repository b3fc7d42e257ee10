// Files without blocking the loop: every system call that may wait for a
// disk runs on one of the loop's worker threads (run_blocking's pool) while
// the calling fiber parks; on an io_uring loop (Loop::backend()), read_at
// and write_at are io_uring READ / WRITE operations instead, submitted with
// the loop's next wait, and no thread is involved.
//
//   std::string config = fiberloop::read_file("/etc/app.conf");
//   auto log = fiberloop::File::open("/var/log/app.log", O_WRONLY | O_APPEND | O_CREAT);
//   log.write_at(line, log.size());
//
// An operation on a caller's buffer (read_at, write_at, write_file's writes
// to a file) always finishes before it returns, so neither a worker nor the
// kernel touches the buffer afterwards: a cancel or timeout that arrives
// meanwhile is delivered at the fiber's next suspension point, as for a
// wake-up that came first. read_file, File::open and write_file's open,
// which use no buffer of the caller's, end at once instead (a job still
// queued then does nothing; a running one's late result is dropped, an fd
// it opened closed). A FIFO never holds a worker, since its other end may
// never come or never read: the worker leaves a FIFO to the loop, which
// opens it only when its fiber is there to use it, and opens anything else
// with O_NONBLOCK added (taken back for a file), so that a FIFO put at the
// path after its look is not waited for either; the loop reads and writes
// a FIFO without blocking, so a cancel or timeout ends any of it at once;
// File refuses a FIFO. Errors are
// std::system_error naming the operation and the path. Every function here
// parks the calling fiber, so each also throws std::logic_error outside a
// fiber.
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "io/internal/text_bytes.h"

namespace fiberloop {

// The whole file. A FIFO is opened without waiting for a writer and read
// on the loop until its writers are gone (after the first one came), like
// a socket: no worker waits for it, and a cancel or timeout closes it at
// once, so no reader is left to take a later writer's data.
// Throws: std::system_error naming the path ("read_file
// /etc/nope: No such file or directory"; ENOMEM, with its size, for a file
// larger than the memory the process may have (the machine's, or its
// control group's limit) or than an allocation may be: File's
// read_at is for those; also for a device or a FIFO's writer that gives
// more, which is stopped there, before the string's growth passes it: for
// those, a stream of your own, O_NONBLOCK and wait_readable); Cancelled;
// TimeoutError (the
// worker stops at its next read of up to 64 KiB and drops what it read, so
// an endless source such as /dev/zero does not keep it);
// std::invalid_argument for a path with a NUL byte.
std::string read_file(const std::string& path);

// Creates or truncates `path` (mode 0644 before the umask) and writes all of
// `data`. A cancel or timeout during the open ends it at once, writing
// nothing (an open still under way then may create the file, empty, but
// truncates nothing); once the writes to a file have begun, they finish
// first. A FIFO without a reader is waited for on the loop (the kernel says
// nothing when a reader comes, so the open is tried again, every 10 ms at
// the slowest), and written from the loop as its reader takes the data: a
// cancel or timeout ends either at once (what was written stays written),
// leaving no open behind that a later reader would see; a reader that has
// gone is EPIPE, never SIGPIPE.
// Throws: std::system_error naming the path; Cancelled, TimeoutError;
//         std::invalid_argument for a path with a NUL byte.
void write_file(const std::string& path, std::string_view data);

class File {
 public:
  File() = default;
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  // Closes the fd if still open (errors ignored: call close() to see them).
  // Operations in flight are not disturbed: the last of them closes it, as
  // for close(); the same holds for a File assigned over or moved from.
  // (Changing the File object itself while another thread is starting an
  // operation on it is a race on the object, as for any C++ object.)
  ~File();

  // open(2) with `flags` (O_RDONLY, O_WRONLY | O_CREAT | O_TRUNC, ...;
  // O_CLOEXEC is added) and `mode` for a file it creates, on a worker. An
  // open that waits (a device, a slow file system) ends at a cancel or
  // timeout: the fiber goes at once, and the fd the open returns later is
  // closed; one still queued then opens nothing. A FIFO, which has no
  // offsets, is refused before it is opened (its other end sees nothing; a
  // FIFO put at the path after that look is opened without waiting, then
  // refused, unless it took a device's place: a device opens as asked):
  // read_file and write_file take FIFOs. Not
  // refused: O_PATH (no file is opened), O_DIRECTORY (ENOTDIR), O_CREAT |
  // O_EXCL (EEXIST); O_NOFOLLOW looks at a link itself.
  // Throws: std::system_error naming the path (ESPIPE for a FIFO, saying
  //         what to use instead); Cancelled; TimeoutError;
  //         std::logic_error outside a fiber; std::invalid_argument for a
  //         path with a NUL byte.
  static File open(const std::string& path, int flags, mode_t mode = 0644);

  // pread: up to buf.size() bytes from byte `offset`. Returns: the count; 0
  // at or past the end of the file. Throws: std::system_error naming the
  // path and the offset (EINVAL when the range passes 2^63 - 1, the largest
  // offset, on either backend).
  std::size_t read_at(std::span<char> buf, std::uint64_t offset);
  // pwrite: all of `data` at byte `offset` (several writes if the kernel
  // takes less). Returns: data.size(). Throws: std::system_error.
  std::size_t write_at(std::span<const char> data, std::uint64_t offset);
  // A string literal without its terminating NUL (write_at("abc", 0)
  // writes 3 bytes); not a mutable char buffer. A std::string or
  // std::string_view converts to the span.
  template <internal::CharArrayElement C, std::size_t N>
  std::size_t write_at(C (&text)[N], std::uint64_t offset) {
    return write_at(internal::text_bytes(text), offset);
  }
  // The size in bytes: fstat's, or for a block device the device's
  // (BLKGETSIZE64; fstat says 0). Throws: std::system_error.
  std::uint64_t size();
  // fsync: the data and metadata on stable storage. Throws: std::system_error.
  void sync();
  // Closes the file; a second close does nothing. Operations other fibers
  // have in flight end as they would have (the kernel or a worker may be
  // using the fd): the fd is closed when the last of them ends, as Go's
  // os.File does, so none of them can run on a number the process has
  // reused meanwhile. Operations started after close() throw EBADF.
  // Throws: std::system_error if close(2) reports an error (EIO: data lost);
  // a close left to the last operation reports nothing.
  void close();

  bool is_open() const noexcept;
  // The fd, or -1 once closed; fiberloop owns it.
  int fd() const noexcept;
  // The path it was opened with ("" for an empty File).
  const std::string& path() const noexcept;

 private:
  struct Open;  // io/file.cc
  class Use;
  File(int fd, std::string path, bool seekable);  // Throws: std::bad_alloc

  Open* open_ = nullptr;  // null: empty (default, or moved from)
};

}  // namespace fiberloop
