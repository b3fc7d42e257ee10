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
#include "io/internal/fifo.h"
#include "io/internal/io_handle.h"
#include "io/internal/opened_fd.h"
#include "loop/internal/reactor.h"
#include "loop/internal/scheduler.h"
#include "loop/run_blocking.h"

namespace fiberloop {
namespace {

using internal::Opened;
using internal::throw_file_error;

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

}  // namespace

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
  // writes into no buffer of the caller's. A FIFO is refused without being
  // opened, so that its other end never sees an open come and go (O_PATH,
  // O_DIRECTORY and O_CREAT | O_EXCL open no FIFO: the kernel answers
  // those). A job still queued when the caller has gone opens nothing
  // (O_TRUNC would empty the file after all).
  auto abandoned = std::make_shared<std::atomic<bool>>(false);
  const auto open_on_a_worker = [path, flags, mode, abandoned] {
    if (abandoned->load(std::memory_order_relaxed)) return Opened();
    return internal::open_on_worker(path, flags, mode, *abandoned);
  };
  Opened opened = [&] {
    try {
      return internal::run_blocking_as("File::open " + path, open_on_a_worker);
    } catch (...) {
      abandoned->store(true, std::memory_order_relaxed);
      throw;
    }
  }();
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
