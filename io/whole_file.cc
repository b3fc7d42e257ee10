// read_file and write_file: a whole file in one call (io/file.h). A file is
// read or written by a worker; a FIFO by the loop (io/internal/fifo.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "io/file.h"
#include "io/internal/c_string.h"
#include "io/internal/fifo.h"
#include "io/internal/memory_limit.h"
#include "io/internal/opened_fd.h"
#include "loop/run_blocking.h"

namespace fiberloop {
namespace {

using internal::Opened;
using internal::throw_file_error;

[[noreturn]] void throw_too_large(const std::string& path, const std::string& why) {
  throw_file_error(ENOMEM, "read_file " + path + ": " + why + "; read it in parts (File::read_at)");
}

// How many times a call goes between the worker (which finds a FIFO) and
// the loop (which then finds none) before it gives up: a path that keeps
// changing between a FIFO and something else.
constexpr int kRounds = 1000;

[[noreturn]] void throw_unsettled(const std::string& what) {
  throw_file_error(EAGAIN, what + ": the path kept changing between a FIFO and something else (" +
                               std::to_string(kRounds) + " looks); try again once it settles");
}

// What read_file's worker brings back: the whole file, or a FIFO
// (`fifo.fifo` set) for the loop to read: opened already if it was put at
// the path after the worker's look, else for the loop to open.
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
  if (sized && static_cast<std::uint64_t>(st.st_size) > internal::kAskTheLimitFrom) {
    const std::uint64_t limit = internal::memory_limit();
    if (static_cast<std::uint64_t>(st.st_size) > limit) {
      throw_too_large(path, std::to_string(st.st_size) +
                                " bytes are more than the memory this process may have (" +
                                std::to_string(limit) + " bytes)");
    }
  }
  std::string out;
  // A source of unknown size (a device: /dev/zero never ends) stops at that
  // memory too, not at the OOM killer.
  internal::BoundedAppend bounded;
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
      if (!bounded.append(out, chunk, static_cast<std::size_t>(n))) {
        std::string().swap(out);
        throw_too_large(path, "it gives more than the memory this process may have (" +
                                  std::to_string(bounded.limit()) + " bytes)");
      }
    }
  } catch (const std::bad_alloc&) {  // a huge (perhaps sparse) file, or an endless source
  } catch (const std::length_error&) {
  }
  std::string().swap(out);  // memory back for the message
  throw_too_large(path, sized ? std::to_string(st.st_size) + " bytes do not fit in memory"
                              : "what it holds does not fit in memory");
}

}  // namespace

std::string read_file(const std::string& path) {
  internal::require_c_string(path, "read_file path");
  // Set once the caller stops waiting (cancelled, timed out): a job still
  // queued then does nothing, and a running one stops at its next chunk
  // instead of reading an endless source (/dev/zero) into memory nobody
  // will take.
  auto abandoned = std::make_shared<std::atomic<bool>>(false);
  try {
    for (int round = 1;; ++round) {
      if (round > kRounds) throw_unsettled("read_file " + path);
      Whole whole = internal::run_blocking_as("read_file " + path, [path, abandoned] {
        Whole w;
        if (abandoned->load(std::memory_order_relaxed)) return w;
        Opened o = internal::open_on_worker(path, O_RDONLY, 0, *abandoned);
        if (o.fifo) {
          w.fifo = std::move(o);
          return w;
        }
        if (o.fd < 0) throw_file_error(o.err, "read_file " + path);
        w.data = read_to_end(o.fd, path, *abandoned);
        return w;
      });
      if (!whole.fifo.fifo) return std::move(whole.data);
      if (whole.fifo.fd >= 0) return internal::read_fifo(whole.fifo.fd, path);
      // Opened without waiting for a writer, now that this fiber is here
      // to read: a cancel or timeout closes it again.
      Opened reading;
      switch (internal::open_fifo(path, O_RDONLY, &reading.fd)) {
        case internal::FifoOpen::kOpened:
          return internal::read_fifo(reading.fd, path);
        case internal::FifoOpen::kFailed:
          throw_file_error(std::exchange(reading.fd, -1), "read_file " + path);
        case internal::FifoOpen::kNoReader:  // (only for writing)
        case internal::FifoOpen::kNotAFifo:
          break;
      }
      // No FIFO there any more: the worker looks again.
    }
  } catch (...) {
    abandoned->store(true, std::memory_order_relaxed);
    throw;
  }
}

namespace {

// write_file's open, on a worker (interruptible: it writes into no memory
// of the caller's), or on the loop for a FIFO (`fifo` set). No O_TRUNC: an
// open that ends after a cancel must not empty the file. A job still
// queued when its caller has gone (`abandoned`) opens nothing.
Opened open_for_write_file(const std::string& path,
                           const std::shared_ptr<std::atomic<bool>>& abandoned) {
  for (int round = 1;; ++round) {
    if (round > kRounds) throw_unsettled("write_file " + path + " (open)");
    Opened o = internal::run_blocking_as("write_file " + path + " (open)", [path, abandoned] {
      if (abandoned->load(std::memory_order_relaxed)) return Opened();
      return internal::open_on_worker(path, O_WRONLY | O_CREAT, 0644, *abandoned);
    });
    if (!o.fifo || o.fd >= 0) return o;
    o.fd = internal::open_fifo_for_writing(path);
    if (o.fd >= 0) return o;
    // No FIFO there any more: the worker looks again.
  }
}

}  // namespace

void write_file(const std::string& path, std::string_view data) {
  internal::require_c_string(path, "write_file path");
  auto abandoned = std::make_shared<std::atomic<bool>>(false);
  Opened opened = [&] {
    try {
      return open_for_write_file(path, abandoned);
    } catch (...) {
      abandoned->store(true, std::memory_order_relaxed);
      throw;
    }
  }();
  if (opened.fd < 0) throw_file_error(opened.err, "write_file " + path + " (open)");
  // A FIFO's writes wait on the loop, and end at a cancel or timeout (the
  // kernel has copied what it took): its reader may never read.
  if (opened.fifo) return internal::write_fifo(opened.fd, path, data);
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

}  // namespace fiberloop
