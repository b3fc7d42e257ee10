// FIFOs on the loop: see io/internal/fifo.h.
#include "io/internal/fifo.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
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

// write(2) with SIGPIPE blocked on this thread (a loop's thread may take
// it, and its default ends the process): a reader that has gone is EPIPE,
// and the SIGPIPE the write raised is taken back unless one was pending
// already.
ssize_t write_without_sigpipe(int fd, const char* data, std::size_t size) {
  sigset_t pipe_signal, pending, old;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
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

int reopen(int path_fd, const std::string& path, int flags, mode_t mode) {
  char through[32];
  std::snprintf(through, sizeof through, "/proc/self/fd/%d", path_fd);
  const int fd = ::open(through, flags | O_CLOEXEC, mode);
  // (ENOENT: no /proc, since a name of an open file never fails so.)
  if (fd >= 0 || errno != ENOENT) return fd;
  return ::open(path.c_str(), (flags & ~(O_CREAT | O_EXCL)) | O_CLOEXEC, mode);
}

namespace {

// `fd` (or -1 with errno set) as an Opened: `seekable` and `fifo` from
// fstat(2).
Opened opened(int fd) {
  Opened o;
  o.fd = fd;
  struct stat st {};
  if (fd < 0) {
    o.err = errno;
  } else if (::fstat(fd, &st) == 0) {
    o.seekable = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
    o.fifo = S_ISFIFO(st.st_mode);
  }
  return o;
}

// What the O_PATH fd `look` names, opened as asked, or `look` itself for a
// FIFO.
Opened open_looked_at(int look, const std::string& path, int flags, mode_t mode) {
  struct stat st {};
  if (::fstat(look, &st) == 0 && S_ISFIFO(st.st_mode)) {
    Opened fifo;
    fifo.fd = look;  // the loop opens it (reopen), when its fiber is there
    fifo.fifo = true;
    return fifo;
  }
  const int fd = S_ISLNK(st.st_mode) ? (errno = ELOOP, -1)  // O_NOFOLLOW on a link
                                     : reopen(look, path, flags & ~(O_CREAT | O_NOFOLLOW), mode);
  const int err = errno;
  ::close(look);
  errno = err;
  return opened(fd);
}

}  // namespace

Opened open_on_worker(const std::string& path, int flags, mode_t mode) {
  // These open no FIFO: the kernel answers them itself (O_DIRECTORY and
  // O_TMPFILE: ENOTDIR; O_CREAT | O_EXCL: EEXIST or a new file).
  if ((flags & (O_PATH | O_DIRECTORY)) != 0 || ((flags & O_CREAT) != 0 && (flags & O_EXCL) != 0)) {
    Opened o = opened(::open(path.c_str(), flags | O_CLOEXEC, mode));
    o.fifo = false;  // (O_PATH: no FIFO opened)
    return o;
  }
  for (int looks = 1;; ++looks) {
    const int look = ::open(path.c_str(), O_PATH | O_CLOEXEC | (flags & O_NOFOLLOW));
    if (look >= 0) return open_looked_at(look, path, flags, mode);
    if (errno != ENOENT || (flags & O_CREAT) == 0) return opened(-1);
    // Nothing there: created, with O_EXCL so that no FIFO put there
    // meanwhile is opened instead.
    const int created = ::open(path.c_str(), flags | O_EXCL | O_CLOEXEC, mode);
    if (created >= 0 || errno != EEXIST) return opened(created);
    if (looks == 1) continue;  // something came meanwhile: looked at next
    // Twice nothing to look at, yet something that O_EXCL refuses: a
    // symbolic link to nothing, which open(2) follows to create the file
    // (under the kernel's own rules: fs.protected_symlinks). O_NONBLOCK, so
    // that a FIFO put there meanwhile is not waited for: handed to the loop.
    Opened o = opened(::open(path.c_str(), flags | O_NONBLOCK | O_CLOEXEC, mode));
    if (o.fd >= 0 && !o.fifo) {
      const int status = ::fcntl(o.fd, F_GETFL);
      if (status < 0 || ::fcntl(o.fd, F_SETFL, status & ~O_NONBLOCK) != 0) {
        o.err = errno;
        ::close(std::exchange(o.fd, -1));
      }
    }
    return o;
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
