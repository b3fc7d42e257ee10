// What Process's files share: the parent's end of a pipe to the child, and
// the count of fibers that use a Process while parked in it.
#pragma once

#include <string>
#include <utility>

#include "io/internal/socket.h"
#include "io/process.h"
#include "io/socket_stream.h"

namespace fiberloop {

// A pipe to the child: the parent's end of a Unix socket pair.
class Process::Pipe final : public SocketStream {
 public:
  // `name` ("stdin of pid 7 (cat)") is what its errors and describe() say.
  Pipe(internal::Socket socket, std::string name) noexcept : SocketStream(std::move(socket)) {
    socket_.set_label(std::move(name));
  }
  ~Pipe() override { end_operations(); }
};

namespace internal {

// Counts a fiber in wait() or communicate() for its scope (checked by
// ~Process and the moves: that fiber uses the Process again).
struct Waiting {
  explicit Waiting(int& count) noexcept : count(count) { ++count; }
  ~Waiting() { --count; }
  Waiting(const Waiting&) = delete;
  Waiting& operator=(const Waiting&) = delete;
  int& count;
};

}  // namespace internal
}  // namespace fiberloop
