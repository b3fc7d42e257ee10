#include "io/stream.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <string>
#include <string_view>

#include "io/internal/by_deadline.h"
#include "loop/errors.h"
#include "loop/internal/deadline.h"
#include "loop/internal/scheduler.h"
#include "loop/internal/waiter.h"

namespace fiberloop {
namespace {

bool in_fiber() noexcept {
  const internal::Scheduler* s = internal::Scheduler::current();
  return s != nullptr && s->running() != nullptr;
}

// Runs `op` under the stream's deadline `at` (none: TimePoint::max()),
// `slot` pointing at it meanwhile so that setting the deadline reaches it,
// and `ops_loop` naming the loop that runs it; the TimeoutError names the
// stream. `op_name` ("read") names a second operation in the same
// direction, refused.
template <class Op>
std::size_t by_deadline(const Stream& stream, TimePoint at,
                        std::atomic<internal::DeadlineOp*>& slot,
                        std::atomic<internal::Scheduler*>& ops_loop, const char* label,
                        const char* op_name, Op op) {
  // Outside a fiber, no scope: the operation itself says why it cannot wait.
  if (at == TimePoint::max() && !in_fiber()) [[unlikely]]
    return op();
  return internal::run_by_deadline(
      at, label, &slot,
      [&] { return std::string(label) + " of " + stream.describe() + " has passed"; },
      [&] {
        return std::string(op_name) + " " + stream.describe() + ": another fiber is already " +
               (std::string_view(op_name) == "read" ? "reading" : "writing") +
               " this stream (on this loop or another); one reader and one writer at a time";
      },
      [&] {
        // (Only once the slot is ours: a refused operation leaves it be.)
        internal::Scheduler* here = internal::Scheduler::current();
        if (ops_loop.load(std::memory_order_relaxed) != here) [[unlikely]]
          ops_loop.store(here, std::memory_order_release);
        return op();
      });
}

constexpr const char* kReadDeadline = "Stream: the read deadline (set_read_deadline)";
constexpr const char* kWriteDeadline = "Stream: the write deadline (set_write_deadline)";

}  // namespace

Stream::~Stream() {
  for (std::atomic<internal::DeadlineOp*>* slot : {&read_op_, &write_op_}) {
    if (internal::DeadlineOp* op = slot->load(std::memory_order_acquire)) op->home = nullptr;
  }
}

void Stream::set_read_deadline(TimePoint at) {
  apply_deadline(&Stream::read_deadline_, &Stream::read_op_, read_ops_loop_, at);
}

void Stream::set_write_deadline(TimePoint at) {
  apply_deadline(&Stream::write_deadline_, &Stream::write_op_, write_ops_loop_, at);
}

void Stream::apply_deadline(TimePoint Stream::*deadline,
                            std::atomic<internal::DeadlineOp*> Stream::*op,
                            std::atomic<internal::Scheduler*>& ops_loop, TimePoint at) {
  struct Set {
    Stream* stream;
    TimePoint Stream::*deadline;
    std::atomic<internal::DeadlineOp*> Stream::*op;
    TimePoint at;
    std::exception_ptr failed;  // move_to's bad_alloc, thrown to the caller
  } set{this, deadline, op, at, nullptr};
  auto apply = [](void* arg) noexcept {
    auto& s = *static_cast<Set*>(arg);
    s.stream->*s.deadline = s.at;
    internal::DeadlineOp* running = (s.stream->*s.op).load(std::memory_order_acquire);
    if (running == nullptr) return;
    try {
      running->scope->move_to(s.at);
    } catch (...) {
      s.failed = std::current_exception();
    }
  };
  // The operations under way are their loop's: from another thread, that
  // loop applies the deadline (and wakes an operation it has passed), as
  // IoHandle::close() is done on the fd's loop.
  internal::Scheduler* loop = ops_loop.load(std::memory_order_acquire);
  if (loop == nullptr || loop == internal::Scheduler::current() ||
      !internal::call_on_loop_if_live(loop, 0, apply, &set)) {
    apply(&set);
  }
  if (set.failed) std::rethrow_exception(set.failed);
}

std::size_t Stream::read(std::span<char> buf) {
  return by_deadline(*this, read_deadline_, read_op_, read_ops_loop_, kReadDeadline, "read",
                     [&] { return read_some(buf); });
}

std::size_t Stream::write(std::span<const char> buf) {
  return by_deadline(*this, write_deadline_, write_op_, write_ops_loop_, kWriteDeadline, "write",
                     [&] { return write_some(buf); });
}

std::size_t Stream::writev(std::span<const std::string_view> buffers) {
  return by_deadline(*this, write_deadline_, write_op_, write_ops_loop_, kWriteDeadline, "write",
                     [&] { return writev_some(buffers); });
}

std::size_t Stream::writev_some(std::span<const std::string_view> buffers) {
  for (std::string_view b : buffers) {
    if (!b.empty()) return write_some(b);
  }
  return 0;
}

void Stream::read_exact(std::span<char> buf) {
  std::size_t got = 0;
  while (got < buf.size()) {
    const std::size_t n = read(buf.subspan(got));
    if (n == 0) {
      throw EndOfStream("read_exact " + describe() + ": end of stream after " +
                        std::to_string(got) + " of " + std::to_string(buf.size()) + " bytes");
    }
    got += n;
  }
}

void Stream::write_all(std::string_view data) {
  while (!data.empty()) data.remove_prefix(write(data));
}

void Stream::write_all(std::span<const std::string_view> buffers) {
  // A window of the buffers still to go, the first one trimmed by what a
  // short write took of it.
  constexpr std::size_t kWindow = 64;
  std::array<std::string_view, kWindow> window;
  while (!buffers.empty() && buffers.front().empty()) buffers = buffers.subspan(1);
  std::size_t taken = 0;  // of buffers.front()
  while (!buffers.empty()) {
    const std::size_t count = std::min(buffers.size(), kWindow);
    std::copy_n(buffers.begin(), count, window.begin());
    window[0].remove_prefix(taken);
    std::size_t n = writev(std::span<const std::string_view>(window.data(), count));
    // Skip what went: whole buffers, then part of the next.
    n += taken;
    while (!buffers.empty() && n >= buffers.front().size()) {
      n -= buffers.front().size();
      buffers = buffers.subspan(1);
    }
    taken = n;
  }
}

}  // namespace fiberloop
