#include "io/file.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "io/internal/c_string.h"
#include "io/internal/io_handle.h"
#include "io/internal/memory_limit.h"
#include "io/wait.h"
#include "loop/internal/reactor.h"
#include "loop/internal/scheduler.h"
#include "loop/run_blocking.h"
#include "loop/this_fiber.h"

namespace fiberloop {
namespace {

[[noreturn]] void throw_file_error(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

// An fd a worker opened, closed unless claimed: dropped with its job when
// the fiber that asked stopped waiting (cancelled, timed out) meanwhile.
struct Opened {
  Opened() = default;
  Opened(Opened&& other) noexcept
      : fd(std::exchange(other.fd, -1)),
        err(other.err),
        seekable(other.seekable),
        fifo(other.fifo) {}
  Opened& operator=(Opened&&) = delete;
  ~Opened() {
    if (fd >= 0) ::close(fd);
  }

  int fd = -1;
  int err = 0;            // open's errno when fd < 0
  bool seekable = false;  // a regular file or a block device
  bool fifo = false;      // a FIFO: read or waited for on the loop, not on a worker
};

bool path_is_fifo(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

// Clears O_NONBLOCK, which an open added so as not to wait for a FIFO's
// other end: a file or device is then read or written by a worker, blocking.
void make_blocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) != 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

// open(2) of `path` for `flags` that never waits for a FIFO's other end:
// with O_NONBLOCK added, and cleared again unless it is a FIFO (`fifo` set,
// the fd left non-blocking for the loop) or the caller asked for it. A file
// under a lease refuses a non-blocking open (EWOULDBLOCK): opened as asked
// then, on the worker this runs on. A FIFO opened for writing that has no
// reader fails with ENXIO and `fifo` set.
Opened open_without_waiting(const std::string& path, int flags, mode_t mode) {
  Opened o;
  o.fd = ::open(path.c_str(), flags | O_NONBLOCK | O_CLOEXEC, mode);
  if (o.fd < 0 && errno == EWOULDBLOCK && (flags & O_NONBLOCK) == 0)
    o.fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (o.fd < 0) {
    o.err = errno;
    o.fifo = o.err == ENXIO && path_is_fifo(path);
    return o;
  }
  struct stat st {};
  if (::fstat(o.fd, &st) == 0) {
    o.fifo = S_ISFIFO(st.st_mode);
    o.seekable = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
  }
  if (!o.fifo && (flags & O_NONBLOCK) == 0) make_blocking(o.fd);
  return o;
}

// Runs `call` on a worker and waits for it to finish even if interrupted
// (the caller's buffer is in use until then): the interrupt stays pending.
// Returns: what `call` returned; its errno in `err` when it returned -1.
// `what` names it for the loop's shutdown, which waits for it.
template <class Call>
auto on_worker(Call call, int& err, std::string what) {
  decltype(call()) result{};
  internal::run_on_worker(
      [&] {
        result = call();
        err = result < 0 ? errno : 0;
      },
      /*interruptible=*/false, std::move(what));
  return result;
}

// A read or write at `offset` as a kernel operation, on a loop whose backend
// has them (io_uring): the fiber parks until the completion, whatever
// interrupts it (the kernel owns the buffer until then; the interrupt stays
// pending). Returns: false if the loop has no such operations or is
// closing; else true, with the bytes moved in `n`, or -1 and the error in
// `err`.
bool kernel_op(int fd, void* buffer, std::size_t size, std::uint64_t offset, bool write, ssize_t& n,
               int& err) {
  internal::Scheduler* scheduler = internal::Scheduler::current();
  if (scheduler == nullptr || scheduler->closing() || scheduler->running() == nullptr) return false;
  internal::KernelOp op;
  internal::IoWaiter waiter;
  waiter.ready = &internal::IoWaiter::complete;
  waiter.loop = scheduler;
  waiter.fiber = scheduler->running();
  waiter.op = &op;
  op.target = &waiter;
  op.fd = fd;
  op.kind = write ? internal::KernelOp::Kind::kWriteAt : internal::KernelOp::Kind::kReadAt;
  op.buffer = buffer;
  // The caller loops (write_at) or returns a short count (read_at), as for pread.
  op.size = static_cast<std::uint32_t>(std::min(size, internal::KernelOp::kMaxBytes));
  op.offset = offset;
  if (!scheduler->reactor().submit(op)) return false;
  scheduler->reactor().add_waiter();
  while (!waiter.done) scheduler->park_uninterruptible(internal::WaitKind::kFileIo);
  n = op.result < 0 ? -1 : op.result;
  err = op.result < 0 ? -op.result : 0;
  return true;
}

// pread / pwrite: through the kernel's operations when the loop has them
// and the file is `seekable`, else on a worker.
// (`path` names the job for the shutdown's report.)
ssize_t read_or_write_at(int fd, bool seekable, void* buffer, std::size_t size,
                         std::uint64_t offset, bool write, int& err, const std::string& path) {
  ssize_t n = 0;
  if (seekable && kernel_op(fd, buffer, size, offset, write, n, err)) return n;
  return on_worker(
      [&] {
        const auto at = static_cast<off_t>(offset);
        return write ? ::pwrite(fd, buffer, size, at) : ::pread(fd, buffer, size, at);
      },
      err, std::string(write ? "File::write_at " : "File::read_at ") + path);
}

std::string at(const std::string& path, std::uint64_t offset) {
  return path + " at offset " + std::to_string(offset);
}

// The largest offset a file has (off_t). Past it, pread fails with EINVAL,
// and an io_uring READ or WRITE at 2^64 - 1 would use the fd's own position
// instead: refused alike up front.
constexpr std::uint64_t kLargestOffset = std::numeric_limits<off_t>::max();

void check_range(const char* op, const std::string& path, std::uint64_t offset, std::size_t size) {
  if (offset > kLargestOffset || size > kLargestOffset - offset) {
    throw_file_error(EINVAL, std::string(op) + " " + at(path, offset) + " (" +
                                 std::to_string(size) +
                                 " bytes): past the largest file offset, 2^63 - 1");
  }
}

[[noreturn]] void throw_too_large(const std::string& path, const std::string& why) {
  throw_file_error(ENOMEM, "read_file " + path + ": " + why + "; read it in parts (File::read_at)");
}

// The size from which read_file asks what memory the process may have (a
// few files to read: nothing beside reading that much).
constexpr off_t kAskTheLimitFrom = off_t{16} << 20;

// A FIFO's reads: a pipe's default capacity.
constexpr std::size_t kFifoChunk = 64 * 1024;

// A FIFO that has no reader yet, opened for writing once one comes. The
// kernel tells nobody when a reader opens it, so the loop tries again, every
// 100 us at first and every 10 ms at most; a cancel or timeout ends the wait
// at once, with no worker blocked in open(2) and no open left behind to
// reach a later reader (which would see a writer come and go).
Opened open_fifo_for_writing(const std::string& path) {
  Duration pause = std::chrono::microseconds(100);
  for (;;) {
    this_fiber::sleep_for(pause);
    pause = std::min<Duration>(pause * 2, std::chrono::milliseconds(10));
    Opened o = open_without_waiting(path, O_WRONLY, 0);  // a FIFO's does not block
    if (o.fd >= 0 || !o.fifo) return o;
  }
}

// What read_file's worker brings back: the whole file, or a FIFO it opened
// for the loop to read (closed with the result if nobody takes it).
struct Whole {
  std::string data;
  Opened fifo;
};

// Reads `fd` to its end on the worker (a file or a device, blocking).
std::string read_to_end(int fd, const std::string& path, const std::atomic<bool>& abandoned) {
  struct stat st {};
  const bool sized = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  // Not attempted past the memory this process may have (a sparse file
  // can claim terabytes): the allocation could succeed, overcommitted,
  // and the read then take the memory page by page, until the OOM killer.
  if (sized && st.st_size > kAskTheLimitFrom) {
    const std::uint64_t limit = internal::memory_limit();
    if (static_cast<std::uint64_t>(st.st_size) > limit) {
      throw_too_large(path, std::to_string(st.st_size) +
                                " bytes are more than the memory this process may have (" +
                                std::to_string(limit) + " bytes)");
    }
  }
  std::string out;
  try {
    if (sized) out.reserve(static_cast<std::size_t>(st.st_size));
    char chunk[64 * 1024];
    for (;;) {
      const ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        throw_file_error(err, "read_file " + path);
      }
      if (n == 0 || abandoned.load(std::memory_order_relaxed)) return out;
      out.append(chunk, static_cast<std::size_t>(n));
    }
  } catch (const std::bad_alloc&) {  // a huge (perhaps sparse) file, or an endless source
  } catch (const std::length_error&) {
  }
  std::string().swap(out);  // memory back for the message
  throw_too_large(path, sized ? std::to_string(st.st_size) + " bytes do not fit in memory"
                              : "what it holds does not fit in memory");
}

// Reads a FIFO to its end on the loop, through the loop's readiness: it
// waits for a writer without holding a worker, and a cancel or timeout
// closes it at once (so no reader is left behind to take a later writer's
// data). Its end: no writer left once one has come (the kernel reports no
// hang-up before the first writer).
std::string read_fifo(int fd, const std::string& path) {
  std::string out;
  try {
    const auto chunk = std::make_unique<char[]>(kFifoChunk);
    wait_readable(fd);
    for (;;) {
      const ssize_t n = ::read(fd, chunk.get(), kFifoChunk);
      if (n > 0) {
        out.append(chunk.get(), static_cast<std::size_t>(n));
        this_fiber::yield();  // a cancel or timeout reaches it under an endless writer
      } else if (n == 0) {
        return out;
      } else if (errno == EAGAIN) {
        wait_readable(fd);
      } else if (errno != EINTR) {
        const int err = errno;
        throw_file_error(err, "read_file " + path);
      }
    }
  } catch (const std::bad_alloc&) {  // an endless writer
  } catch (const std::length_error&) {
  }
  std::string().swap(out);
  throw_too_large(path, "what it holds does not fit in memory");
}

std::string read_whole(const std::string& path, std::shared_ptr<std::atomic<bool>> abandoned) {
  Whole whole = internal::run_blocking_as("read_file " + path, [path, abandoned] {
    Whole w{std::string(), open_without_waiting(path, O_RDONLY, 0)};
    if (w.fifo.fd < 0) throw_file_error(w.fifo.err, "read_file " + path);
    if (w.fifo.fifo) return w;  // the loop reads it
    const Opened file = std::move(w.fifo);
    w.data = read_to_end(file.fd, path, *abandoned);
    return w;
  });
  if (whole.fifo.fd < 0) return std::move(whole.data);
  return read_fifo(whole.fifo.fd, path);  // `whole` closes it however this ends
}

}  // namespace

std::string read_file(const std::string& path) {
  internal::require_c_string(path, "read_file path");
  // Set once the caller stops waiting (cancelled, timed out): the worker
  // stops at its next chunk instead of reading an endless source (a pipe,
  // /dev/zero) into memory nobody will take.
  auto abandoned = std::make_shared<std::atomic<bool>>(false);
  try {
    return read_whole(path, abandoned);
  } catch (...) {
    abandoned->store(true, std::memory_order_relaxed);
    throw;
  }
}

void write_file(const std::string& path, std::string_view data) {
  internal::require_c_string(path, "write_file path");
  // The open writes into no memory of the caller's: interruptible, as
  // File::open. No O_TRUNC: an open that ends after a cancel must not empty
  // the file.
  Opened first = internal::run_blocking_as("write_file " + path + " (open)", [path] {
    return open_without_waiting(path, O_WRONLY | O_CREAT, 0644);
  });
  Opened opened = first.fd < 0 && first.fifo ? open_fifo_for_writing(path) : std::move(first);
  if (opened.fd < 0) throw_file_error(opened.err, "write_file " + path + " (open)");
  if (opened.fifo) make_blocking(opened.fd);  // written by the worker below
  // The writes read the caller's `data`: waited out, whatever interrupts.
  // The job closes the fd; `opened` does if it never ran.
  int err = 0;
  const char* failed = nullptr;
  internal::run_on_worker(
      [&] {
        const int fd = std::exchange(opened.fd, -1);
        struct stat st {};
        if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::ftruncate(fd, 0) != 0) {
          err = errno, failed = "truncate";
        }
        std::string_view rest = failed != nullptr ? std::string_view() : data;
        while (!rest.empty()) {
          const ssize_t n = ::write(fd, rest.data(), rest.size());
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) {
            err = errno, failed = "write";
            break;
          }
          if (n == 0) {  // (a device that takes nothing: would retry for ever)
            err = EIO, failed = "write took no bytes";
            break;
          }
          rest.remove_prefix(static_cast<std::size_t>(n));
        }
        if (::close(fd) != 0 && failed == nullptr) err = errno, failed = "close";
      },
      /*interruptible=*/false, "write_file " + path);
  if (failed != nullptr)
    throw_file_error(err, std::string("write_file ") + path + " (" + failed + ")");
}

// The open file, shared by the File and the operations in flight, so that
// neither a close() nor a File reassigned or moved meanwhile pulls the fd
// from under an operation. `state` is kClosed once the fd is to be closed,
// kFileGone once the File let go, plus one per operation in flight. The fd
// is closed by whoever makes the state closed with no operation (close(),
// ~File, or the last operation after either); the memory is freed by
// whoever makes it gone with no operation.
struct File::Open {
  static constexpr std::uint32_t kClosed = 1u << 31;
  static constexpr std::uint32_t kFileGone = 1u << 30;
  static constexpr std::uint32_t kOperations = kFileGone - 1;

  Open(int fd, std::string path, bool seekable) noexcept
      : fd(fd), path(std::move(path)), seekable(seekable) {}

  // The File lets go (destroyed, or assigned over): closes the fd unless
  // closed already, or leaves that and the memory to the last operation.
  static void let_go(Open* open) noexcept {
    if (open == nullptr) return;
    const std::uint32_t before =
        open->state.fetch_or(kClosed | kFileGone, std::memory_order_acq_rel);
    if ((before & kOperations) != 0) return;
    if ((before & kClosed) == 0) ::close(open->fd);
    delete open;
  }

  const int fd;
  const std::string path;
  // A regular file or a block device: read_at and write_at may be io_uring
  // operations. (On a pipe or FIFO io_uring would read the stream where
  // pread fails with ESPIPE: those take the worker path.)
  const bool seekable;
  std::atomic<std::uint32_t> state{0};
};

// An operation's hold on the open file, from any thread.
class File::Use {
 public:
  // Throws: std::system_error (EBADF) naming `op` if the file is closed.
  Use(const File& file, const char* op) : open_(file.open_) {
    std::uint32_t state = open_ != nullptr ? open_->state.load(std::memory_order_relaxed) : 0;
    do {
      if (open_ == nullptr || (state & Open::kClosed) != 0) {
        const std::string& path = open_ != nullptr ? open_->path : std::string();
        throw_file_error(EBADF, std::string("File::") + op + " " +
                                    (path.empty() ? std::string("(no file)") : path) +
                                    ": the file is closed");
      }
    } while (!open_->state.compare_exchange_weak(state, state + 1, std::memory_order_acquire,
                                                 std::memory_order_relaxed));
  }
  ~Use() {
    // Read first: once the count is down, a File's let_go() on another
    // thread may free the record.
    const int fd = open_->fd;
    const std::uint32_t now = open_->state.fetch_sub(1, std::memory_order_acq_rel) - 1;
    if ((now & Open::kOperations) != 0 || (now & Open::kClosed) == 0) return;
    ::close(fd);  // the last operation after a close(): closed with it
    if ((now & Open::kFileGone) != 0) delete open_;
  }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;

  int fd() const noexcept { return open_->fd; }
  const std::string& path() const noexcept { return open_->path; }
  bool seekable() const noexcept { return open_->seekable; }

 private:
  Open* open_;
};

File::File(int fd, std::string path, bool seekable)
    : open_(new Open(fd, std::move(path), seekable)) {}

File::File(File&& other) noexcept : open_(std::exchange(other.open_, nullptr)) {}

File& File::operator=(File&& other) noexcept {
  if (this != &other) Open::let_go(std::exchange(open_, std::exchange(other.open_, nullptr)));
  return *this;
}

File::~File() { Open::let_go(open_); }

bool File::is_open() const noexcept {
  return open_ != nullptr && (open_->state.load(std::memory_order_acquire) & Open::kClosed) == 0;
}

int File::fd() const noexcept { return is_open() ? open_->fd : -1; }

const std::string& File::path() const noexcept {
  static const std::string none;
  return open_ != nullptr ? open_->path : none;
}

File File::open(const std::string& path, int flags, mode_t mode) {
  internal::require_c_string(path, "File::open path");
  // Interruptible: an open may wait (a device, a slow file system), and it
  // writes into no buffer of the caller's. A FIFO is refused before it is
  // opened, so that its other end never sees an open come and go.
  Opened opened = internal::run_blocking_as("File::open " + path, [path, flags, mode] {
    if (path_is_fifo(path)) {
      Opened o;
      o.fifo = true;
      return o;
    }
    Opened o = open_without_waiting(path, flags, mode);
    if (o.fifo && o.fd >= 0) ::close(std::exchange(o.fd, -1));  // made one since it looked
    return o;
  });
  if (opened.fifo) {
    throw_file_error(ESPIPE, "File::open " + path +
                                 ": a FIFO, which has no offsets to read or write at; read it "
                                 "with read_file, write it with write_file, or open it with "
                                 "O_NONBLOCK yourself and wait_readable / wait_writable");
  }
  if (opened.fd < 0) throw_file_error(opened.err, "open " + path);
  File file(opened.fd, path, opened.seekable);  // (std::bad_alloc: `opened` closes it)
  opened.fd = -1;
  return file;
}

std::size_t File::read_at(std::span<char> buf, std::uint64_t offset) {
  const Use use(*this, "read_at");
  check_range("read_at", use.path(), offset, buf.size());
  int err = 0;
  ssize_t n;
  do {
    n = read_or_write_at(use.fd(), use.seekable(), buf.data(), buf.size(), offset, false, err,
                         use.path());
  } while (n < 0 && err == EINTR);
  if (n < 0) throw_file_error(err, "read_at " + at(use.path(), offset));
  return static_cast<std::size_t>(n);
}

std::size_t File::write_at(std::span<const char> data, std::uint64_t offset) {
  const Use use(*this, "write_at");
  check_range("write_at", use.path(), offset, data.size());
  int err = 0;
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n =
        read_or_write_at(use.fd(), use.seekable(), const_cast<char*>(data.data() + done),
                         data.size() - done, offset + done, true, err, use.path());
    if (n < 0 && err == EINTR) continue;
    if (n < 0) throw_file_error(err, "write_at " + at(use.path(), offset + done));
    if (n == 0) {
      throw_file_error(EIO, "write_at " + at(use.path(), offset + done) + " wrote nothing");
    }
    done += static_cast<std::size_t>(n);
  }
  return done;
}

std::uint64_t File::size() {
  const Use use(*this, "size");
  struct stat st {};
  int err = 0;
  std::uint64_t bytes = 0;
  const auto size_of = [&] {
    if (::fstat(use.fd(), &st) != 0) return -1;
    if (!S_ISBLK(st.st_mode)) {
      bytes = static_cast<std::uint64_t>(st.st_size);
      return 0;
    }
    return ::ioctl(use.fd(), BLKGETSIZE64, &bytes);  // st_size is 0 for a device
  };
  if (on_worker(size_of, err, "File::size " + use.path()) != 0) {
    throw_file_error(err, "size " + use.path());
  }
  return bytes;
}

void File::sync() {
  const Use use(*this, "sync");
  int err = 0;
  if (on_worker([&] { return ::fsync(use.fd()); }, err, "File::sync " + use.path()) != 0) {
    throw_file_error(err, "sync " + use.path());
  }
}

void File::close() {
  if (open_ == nullptr) return;
  const std::uint32_t before = open_->state.fetch_or(Open::kClosed, std::memory_order_acq_rel);
  // Closed already, or the last operation in flight closes it.
  if ((before & (Open::kClosed | Open::kOperations)) != 0) return;
  if (::close(open_->fd) != 0 && errno != EINTR) {
    const int err = errno;
    throw_file_error(err, "close " + open_->path);
  }
}

}  // namespace fiberloop
