#include "io/stream.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <typeinfo>

#include "io/internal/by_deadline.h"
#include "loop/errors.h"
#include "loop/internal/deadline.h"
#include "loop/internal/scheduler.h"
#include "loop/internal/waiter.h"

namespace fiberloop {
namespace {

// Rethrows the error a composite operation (read_exact, write_all) met
// after `done` of its `total` bytes, saying so: "read fd 7 (read_exact,
// after 2 of 4 bytes): Connection reset by peer" (those bytes are gone from
// the stream, or reached it). Only a std::system_error itself, and only
// once some bytes went: anything else is rethrown as it is.
[[noreturn]] void rethrow_with_progress(const char* op, std::size_t done, std::size_t total) {
  try {
    throw;
  } catch (const std::system_error& e) {
    if (done == 0 || typeid(e) != typeid(std::system_error)) throw;
    std::string what = e.what();
    const std::string reason = ": " + e.code().message();
    if (what.ends_with(reason)) what.resize(what.size() - reason.size());
    throw std::system_error(e.code(), what + " (" + op + ", after " + std::to_string(done) +
                                          " of " + std::to_string(total) + " bytes)");
  }
}

bool in_fiber() noexcept {
  const internal::Scheduler* s = internal::Scheduler::current();
  return s != nullptr && s->running() != nullptr;
}

// Runs `op` under the deadline of `direction`, which points at it
// meanwhile (so that setting the deadline reaches it) and names the loop
// running it; the TimeoutError names the stream. `op_name` ("read") names
// a second operation in the same direction, refused.
template <class Op>
std::size_t by_deadline(const Stream& stream, internal::StreamDirection& direction,
                        const char* label, const char* op_name, Op op) {
  const auto passed = [&] {
    return std::string(label) + " of " + stream.describe() + " has passed";
  };
  // Outside a fiber, no scope: the operation itself says why it cannot wait
  // (if it must). A deadline passed already fails it first, as in a fiber.
  if (!in_fiber()) [[unlikely]] {
    const TimePoint at = direction.deadline.load(std::memory_order_relaxed);
    if (at != TimePoint::max() && Clock::now() >= at) {
      throw TimeoutError(passed());
    }
    if constexpr (std::is_invocable_v<Op, const internal::DeadlineOp&>) {
      return op(internal::DeadlineOp{nullptr, &direction});  // (never let go of: never parks)
    } else {
      return op();
    }
  }
  return internal::run_by_deadline(
      TimePoint::max(), label, &direction, passed,
      [&] {
        return std::string(op_name) + " " + stream.describe() + ": another fiber is already " +
               (std::string_view(op_name) == "read" ? "reading" : "writing") +
               " this stream (on this loop or another); one reader and one writer at a time";
      },
      op);
}

constexpr const char* kReadDeadline =
    "Stream: the read deadline (set_read_deadline or set_deadline)";
constexpr const char* kWriteDeadline =
    "Stream: the write deadline (set_write_deadline or set_deadline)";

// The stream lets go of the operation under way (on the operation's loop):
// it finds `home` null, and never touches the stream again.
void let_go(internal::DeadlineOp& op, void*) {
  internal::StreamDirection* direction = op.home;
  op.home = nullptr;
  direction->op.store(nullptr, std::memory_order_release);
}

}  // namespace

Stream::Stream(Stream&& other) noexcept {
  // What other's operations under way wait on may have moved here: they
  // are let go of (they finish their call, and touch other no more).
  other.let_go_of_operations();
  read_.deadline.store(other.read_.deadline.load());
  write_.deadline.store(other.write_.deadline.load());
}

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this == &other) return *this;
  end_operations();
  other.let_go_of_operations();  // (what they wait on moves here)
  read_.deadline.store(other.read_.deadline.load());
  write_.deadline.store(other.write_.deadline.load());
  return *this;
}

Stream::~Stream() { let_go_of_operations(); }

void Stream::end_operations() noexcept {
  close();
  let_go_of_operations();
}

void Stream::let_go_of_operations() noexcept {
  internal::reach_operation(read_, &let_go, nullptr, /*free_abandoned=*/true);
  internal::reach_operation(write_, &let_go, nullptr, /*free_abandoned=*/true);
}

void Stream::set_read_deadline(TimePoint at) { set_direction_deadline(read_, at); }

void Stream::set_write_deadline(TimePoint at) { set_direction_deadline(write_, at); }

void Stream::set_direction_deadline(internal::StreamDirection& direction, TimePoint at) {
  // (Before looking for the operation: one that claims the direction after
  // this look reads the new deadline as it starts.)
  direction.deadline.store(at, std::memory_order_seq_cst);
  // The operation under way is its loop's, and so is its timer: from
  // another thread, that loop moves it (and wakes an operation it has
  // passed). The latest deadline is applied, whichever setter's it is.
  internal::reach_operation(
      direction,
      [](internal::DeadlineOp& op, void*) {
        op.scope->move_to(op.home->deadline.load(std::memory_order_seq_cst));
      },
      nullptr);
}

std::size_t Stream::read(std::span<char> buf) {
  return by_deadline(*this, read_, kReadDeadline, "read", [&] { return read_some(buf); });
}

std::size_t Stream::write(std::span<const char> buf) {
  return by_deadline(*this, write_, kWriteDeadline, "write", [&] { return write_some(buf); });
}

void Stream::run_as_write(void (*op)(void* arg), void* arg) {
  by_deadline(*this, write_, kWriteDeadline, "write", [&] {
    op(arg);
    return std::size_t{0};
  });
}

std::size_t Stream::writev(std::span<const std::string_view> buffers) {
  return by_deadline(*this, write_, kWriteDeadline, "write", [&] { return writev_some(buffers); });
}

std::size_t Stream::writev_some(std::span<const std::string_view> buffers) {
  for (std::string_view b : buffers) {
    if (!b.empty()) return write_some(b);
  }
  return 0;
}

// The composite operations hold their direction (and its deadline's
// scope) from the first call to the last: a destroyer between two of the
// calls finds the operation under way, not a stream at rest, and once let
// go of, the operation makes no further call on it (EBADF) even if its
// call returned (a moved-from stream's close wakes nothing). The deadline
// is checked as they start and whenever they wait (as Go's Write, which
// loops inside one deadline). With nothing to do they do nothing.
void Stream::read_exact(std::span<char> buf) {
  if (buf.empty()) return;
  by_deadline(*this, read_, kReadDeadline, "read", [&](const internal::DeadlineOp& self) {
    std::size_t got = 0;
    while (got < buf.size()) {
      if (got != 0 && self.home == nullptr) internal::throw_let_go("read_exact");
      std::size_t n = 0;
      try {
        n = read_some(buf.subspan(got));
      } catch (...) {
        rethrow_with_progress("read_exact", got, buf.size());
      }
      if (n == 0) {
        if (self.home == nullptr) internal::throw_let_go("read_exact");  // (no describe())
        throw EndOfStream("read_exact " + describe() + ": end of stream after " +
                          std::to_string(got) + " of " + std::to_string(buf.size()) + " bytes");
      }
      got += n;
    }
    return got;
  });
}

void Stream::write_all(std::string_view data) {
  if (data.empty()) return;
  by_deadline(*this, write_, kWriteDeadline, "write", [&](const internal::DeadlineOp& self) {
    const std::size_t total = data.size();
    for (bool first = true; !data.empty(); first = false) {
      if (!first && self.home == nullptr) internal::throw_let_go("write_all");
      try {
        data.remove_prefix(write_some(data));
      } catch (...) {
        rethrow_with_progress("write_all", total - data.size(), total);
      }
    }
    return std::size_t{0};
  });
}

void Stream::write_all(std::span<const std::string_view> buffers) {
  while (!buffers.empty() && buffers.front().empty()) buffers = buffers.subspan(1);
  if (buffers.empty()) return;
  by_deadline(*this, write_, kWriteDeadline, "write", [&](const internal::DeadlineOp& self) {
    // A window of the buffers still to go, the first one trimmed by what a
    // short write took of it.
    constexpr std::size_t kWindow = 64;
    std::array<std::string_view, kWindow> window;
    std::size_t taken = 0;  // of buffers.front()
    std::size_t total = 0, sent = 0;
    for (std::string_view b : buffers) total += b.size();
    for (bool first = true; !buffers.empty(); first = false) {
      if (!first && self.home == nullptr) internal::throw_let_go("write_all");
      const std::size_t count = std::min(buffers.size(), kWindow);
      std::copy_n(buffers.begin(), count, window.begin());
      window[0].remove_prefix(taken);
      std::size_t n = 0;
      try {
        n = writev_some(std::span<const std::string_view>(window.data(), count));
      } catch (...) {
        rethrow_with_progress("write_all", sent, total);
      }
      sent += n;
      // Skip what went: whole buffers, then part of the next.
      n += taken;
      while (!buffers.empty() && n >= buffers.front().size()) {
        n -= buffers.front().size();
        buffers = buffers.subspan(1);
      }
      taken = n;
    }
    return std::size_t{0};
  });
}

}  // namespace fiberloop
