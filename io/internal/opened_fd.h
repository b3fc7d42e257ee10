// What the file calls share: an fd a worker opened for a fiber, closed
// unless the fiber takes it, and the error they throw.
#pragma once

#include <unistd.h>

#include <string>
#include <system_error>
#include <utility>

namespace fiberloop::internal {

// std::system_error for errno `err`, saying `what` ("read_file /etc/x").
[[noreturn]] inline void throw_file_error(int err, const std::string& what) {
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
  Opened& operator=(Opened&& other) noexcept {
    if (this != &other) {
      if (fd >= 0) ::close(fd);
      fd = std::exchange(other.fd, -1);
      err = other.err;
      seekable = other.seekable;
      fifo = other.fifo;
    }
    return *this;
  }
  ~Opened() {
    if (fd >= 0) ::close(fd);
  }

  int fd = -1;
  int err = 0;            // open's errno when fd < 0
  bool seekable = false;  // a regular file or a block device
  bool fifo = false;      // a FIFO, which the loop reads or writes (io/internal/fifo.h)
};

}  // namespace fiberloop::internal
