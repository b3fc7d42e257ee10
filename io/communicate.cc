// Process::communicate: feeds stdin and drains stdout and stderr at once,
// each pipe on a fiber of its own, then waits for the child.
#include <cerrno>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "io/internal/process_pipe.h"
#include "io/process.h"
#include "loop/loop.h"

namespace fiberloop {

std::pair<std::string, std::string> Process::communicate(std::string_view input) {
  if (!input.empty() && !pipes_[0]) {
    throw std::logic_error("Process::communicate: input for pid " + std::to_string(pid_) +
                           ", whose stdin is not a pipe (use Stdio::pipe)");
  }
  // Pipes the caller closed already are left out, as Python's communicate()
  // does: stdout or stderr gives "".
  const auto open = [this](int i) -> Pipe* {
    return pipes_[i] && pipes_[i]->is_open() ? pipes_[i].get() : nullptr;
  };
  if (!input.empty() && open(0) == nullptr) {
    throw std::logic_error("Process::communicate: input for pid " + std::to_string(pid_) +
                           ", whose stdin pipe was closed already");
  }
  // Its helpers and this fiber use the Process until it returns: checked,
  // as wait() is, by ~Process and the moves (declared first, ended last).
  const internal::Waiting waiting(waiting_);
  std::string out, err;
  // The buffer is on the heap: the fibers' stacks may be small (64 KiB), and
  // a frame that size could step over a stack's guard page unnoticed.
  // A pipe another fiber closes meanwhile ends there, as one closed before.
  const auto drain = [](Stream& s, std::string& into) {
    constexpr std::size_t kChunk = 64 * 1024;
    const auto buf = std::make_unique_for_overwrite<char[]>(kChunk);
    try {
      while (std::size_t n = s.read(std::span(buf.get(), kChunk))) into.append(buf.get(), n);
    } catch (const std::system_error&) {
      if (s.is_open()) throw;
    }
  };
  // stdin is fed and stderr drained by fibers of their own while this one
  // reads stdout: a child blocked on one pipe never blocks the others.
  Task<void> feed, drain_err;
  // Cancelled, timed out, or a pipe failed: the helpers use `this` and the
  // strings, so they end before we leave. They are ended here, in a
  // destructor run while the exception unwinds, where the joins wait out a
  // pending interrupt (in a catch block a timeout would cut them short, and
  // a helper would run on after we left).
  struct EndHelpers {
    Task<void>* helpers[2];
    ~EndHelpers() {
      for (Task<void>* helper : helpers) {
        if (!*helper || helper->done()) continue;
        helper->cancel();
        try {
          helper->join();
        } catch (...) {  // what it ended with is not what the caller asked about
        }
      }
    }
  } end_helpers{{&feed, &drain_err}};
  if (open(0) != nullptr) {
    feed = spawn([this, input] {
      // Closed however the feeding ends: a child reading stdin to its end
      // would otherwise never end, nor would the read of its stdout.
      struct CloseWhenDone {
        Pipe& stdin_pipe;
        ~CloseWhenDone() { stdin_pipe.close(); }
      } close_when_done{*pipes_[0]};
      try {
        pipes_[0]->write_all(input);
      } catch (const std::system_error& e) {
        // A child that exits without reading all of it is not an error, nor
        // is a stdin another fiber closed meanwhile.
        const int code = e.code().value();
        if (code != EPIPE && code != ECONNRESET && pipes_[0]->is_open()) throw;
      }
    });
  }
  if (open(2) != nullptr) drain_err = spawn([&] { drain(*pipes_[2], err); });
  if (open(1) != nullptr) drain(*pipes_[1], out);
  if (feed) feed.join();
  if (drain_err) drain_err.join();
  wait();
  return {std::move(out), std::move(err)};
}

}  // namespace fiberloop
