// FIFOs on the loop: see io/internal/fifo.h.
#include "io/internal/fifo.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "io/internal/memory_limit.h"
#include "io/wait.h"
#include "loop/this_fiber.h"

namespace fiberloop::internal {
namespace {

// A FIFO's reads: a pipe's default capacity.
constexpr std::size_t kChunk = 64 * 1024;

[[noreturn]] void fail(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

// Whether SIGPIPE is pending on this thread itself, apart from the
// process (sigpending() shows both): /proc/thread-self/status's SigPnd.
// Without /proc, taken to be.
bool sigpipe_pending_on_this_thread() {
  std::FILE* status = std::fopen("/proc/thread-self/status", "re");
  if (status == nullptr) return true;
  bool pending = true;
  char line[256];
  while (std::fgets(line, sizeof line, status) != nullptr) {
    if (std::strncmp(line, "SigPnd:", 7) == 0) {
      pending = ((std::strtoull(line + 7, nullptr, 16) >> (SIGPIPE - 1)) & 1) != 0;
      break;
    }
  }
  std::fclose(status);
  return pending;
}

// write(2) with SIGPIPE blocked on this thread (a loop's thread may take
// it, and its default ends the process): a reader that has gone is EPIPE,
// and the SIGPIPE the write raised (sent to this thread) is taken back,
// unless this thread had one pending already, which it merged with. One
// pending for the process stays: sigtimedwait() takes the thread's first.
ssize_t write_without_sigpipe(int fd, const char* data, std::size_t size) {
  sigset_t pipe_signal, pending, old;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1 && sigpipe_pending_on_this_thread();
  ::pthread_sigmask(SIG_BLOCK, &pipe_signal, &old);
  const ssize_t n = ::write(fd, data, size);
  const int err = errno;
  if (n < 0 && err == EPIPE && !was_pending) {
    const timespec now{};
    while (::sigtimedwait(&pipe_signal, nullptr, &now) < 0 && errno == EINTR) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = err;
  return n;
}

}  // namespace

bool path_is_fifo(const std::string& path, bool follow) {
  struct stat st {};
  const int r = follow ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st);
  return r == 0 && S_ISFIFO(st.st_mode);
}

Opened open_on_worker(const std::string& path, int flags, mode_t mode,
                      const std::atomic<bool>& abandoned) {
  Opened o;
  const bool follow = (flags & O_NOFOLLOW) == 0;
  // These open no FIFO: the kernel answers them itself (O_DIRECTORY and
  // O_TMPFILE: ENOTDIR; O_CREAT | O_EXCL: EEXIST or a new file).
  const bool opens_no_fifo =
      (flags & (O_PATH | O_DIRECTORY)) != 0 || ((flags & O_CREAT) != 0 && (flags & O_EXCL) != 0);
  struct stat st {};
  const auto look = [&] { return follow ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st); };
  const int looked = look();
  if (!opens_no_fifo && looked == 0 && S_ISFIFO(st.st_mode)) {
    o.fifo = true;  // for the loop to open
    return o;
  }
  const bool device = looked == 0 && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode));
  const bool as_asked = device || opens_no_fifo || (flags & O_NONBLOCK) != 0;
  // The path itself, with every flag asked (the kernel's rules for links
  // and sticky directories apply), plus O_NONBLOCK for what is not a
  // device, so that a FIFO put there since the look is not waited for.
  auto pause = std::chrono::microseconds(100);
  for (int enxio = 0;;) {
    o.fd = ::open(path.c_str(), flags | O_CLOEXEC | (as_asked ? 0 : O_NONBLOCK), mode);
    if (o.fd >= 0 || as_asked) break;
    if (errno == EWOULDBLOCK) {
      // A file under a lease: each try asks for the lease's break, which its
      // holder gives (or the kernel takes after fs.lease-break-time). Not
      // once the caller has gone: O_TRUNC would empty the file after all.
      if (abandoned.load(std::memory_order_relaxed)) {
        errno = ECANCELED;
        break;
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(10'000));
      continue;
    }
    if (errno != ENXIO || (flags & O_ACCMODE) != O_WRONLY) break;
    // ENXIO for writing: a FIFO without a reader, put there since the look,
    // if the path shows one now or nothing (the caller then looks again).
    // A file there may have been swapped back, or say ENXIO itself (a
    // secret memfd through /proc, a FUSE file): tried a few times. A
    // socket's, an eventfd's (through /proc) or a device's ENXIO is
    // reported as it is.
    const int again = look();
    if (again == 0 ? S_ISFIFO(st.st_mode) : errno == ENOENT) {
      o.err = ENXIO;
      o.fifo = true;
      return o;
    }
    errno = ENXIO;
    if (again != 0 || !S_ISREG(st.st_mode) || ++enxio == 16) break;
  }
  if (o.fd < 0) {
    o.err = errno;
    return o;
  }
  if (::fstat(o.fd, &st) == 0) {
    o.seekable = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
    o.fifo = S_ISFIFO(st.st_mode) && (flags & O_PATH) == 0;  // put there since the look
  }
  if (!o.fifo && !as_asked) {  // O_NONBLOCK taken back
    const int status = ::fcntl(o.fd, F_GETFL);
    if (status < 0 || ::fcntl(o.fd, F_SETFL, status & ~O_NONBLOCK) != 0) {
      o.err = errno;
      ::close(std::exchange(o.fd, -1));
    }
  }
  return o;
}

FifoOpen open_fifo(const std::string& path, int flags, int* fd, mode_t mode) {
  *fd = ::open(path.c_str(), flags | O_NONBLOCK | O_CLOEXEC, mode);
  if (*fd < 0) {
    const int err = errno;
    if (!path_is_fifo(path)) return FifoOpen::kNotAFifo;
    if (err == ENXIO && (flags & O_ACCMODE) == O_WRONLY) return FifoOpen::kNoReader;
    *fd = err;
    return FifoOpen::kFailed;
  }
  struct stat st {};
  if (::fstat(*fd, &st) == 0 && S_ISFIFO(st.st_mode)) return FifoOpen::kOpened;
  ::close(*fd);  // replaced since it was looked at
  *fd = -1;
  return FifoOpen::kNotAFifo;
}

int open_fifo_for_writing(const std::string& path) {
  Duration pause = std::chrono::microseconds(100);
  for (int fd;;) {
    // O_CREAT as write_file asks: the kernel's rule for another user's FIFO
    // in a sticky directory (fs.protected_fifos) applies to such opens.
    switch (open_fifo(path, O_WRONLY | O_CREAT, &fd, 0644)) {
      case FifoOpen::kOpened:
        return fd;
      case FifoOpen::kNotAFifo:
        return -1;
      case FifoOpen::kFailed:
        fail(fd, "write_file " + path + " (open)");
      case FifoOpen::kNoReader:
        this_fiber::sleep_for(pause);
        pause = std::min<Duration>(pause * 2, std::chrono::milliseconds(10));
    }
  }
}

std::string read_fifo(int fd, const std::string& path) {
  std::string out;
  BoundedAppend bounded;
  try {
    const auto chunk = std::make_unique_for_overwrite<char[]>(kChunk);
    wait_readable(fd);
    for (;;) {
      const ssize_t n = ::read(fd, chunk.get(), kChunk);
      if (n > 0) {
        if (!bounded.append(out, chunk.get(), static_cast<std::size_t>(n))) {
          std::string().swap(out);
          fail(ENOMEM, "read_file " + path + ": its writer gave more than the memory this " +
                           "process may have (" + std::to_string(bounded.limit()) +
                           " bytes); read it as a stream instead (open it with O_NONBLOCK "
                           "and wait_readable)");
        }
        this_fiber::yield();
      } else if (n == 0) {
        return out;
      } else if (errno == EAGAIN) {
        wait_readable(fd);
      } else if (errno != EINTR) {
        const int err = errno;
        fail(err, "read_file " + path);
      }
    }
  } catch (const std::bad_alloc&) {
  } catch (const std::length_error&) {
  }
  std::string().swap(out);
  fail(ENOMEM, "read_file " + path + ": what its writer gave does not fit in memory");
}

void write_fifo(int fd, const std::string& path, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write_without_sigpipe(fd, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      if (!data.empty()) this_fiber::yield();  // a cancel or timeout reaches it between writes
    } else if (n == 0) {                       // (a pipe never takes nothing: would retry for ever)
      fail(EIO, "write_file " + path + " (write took no bytes)");
    } else if (errno == EAGAIN) {
      wait_writable(fd);
    } else if (errno != EINTR) {
      const int err = errno;
      fail(err, "write_file " + path + " (write)");
    }
  }
}

}  // namespace fiberloop::internal
