#include "io/buffered_reader.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "fiber/internal/check.h"

namespace fiberloop {
namespace {

// The buffer's size, and how much one read of the stream asks for (as
// asyncio's); it grows to the limit for a longer line.
constexpr std::size_t kInitialCapacity = 64 * 1024;

std::string limit_message(const char* op, std::string_view delimiter, std::size_t limit,
                          const Stream& stream) {
  // Control characters as C escapes ("\r\n"), so the message stays one line.
  std::string shown;
  for (const char c : delimiter) {
    switch (c) {
      case '\n':
        shown += "\\n";
        break;
      case '\r':
        shown += "\\r";
        break;
      case '\t':
        shown += "\\t";
        break;
      case '\0':
        shown += "\\0";
        break;
      default:
        shown += c;
    }
  }
  return std::string("BufferedReader::") + op + " on " + stream.describe() + ": no \"" + shown +
         "\" within the limit of " + std::to_string(limit) +
         " bytes (raise the BufferedReader's limit, or treat the peer as misbehaving)";
}

}  // namespace

BufferedReader::BufferedReader(Stream& stream, std::size_t limit) : stream_(stream), limit_(limit) {
  if (limit == 0) throw std::invalid_argument("BufferedReader: a limit of 0 bytes buffers nothing");
}

void BufferedReader::consume(std::size_t n) noexcept {
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;  // empty: start over at the front
}

bool BufferedReader::fill() {
  if (eof_) return false;
  if (end_ == capacity_) {  // no room at the end: move to the front, or grow
    const std::size_t held = end_ - begin_;
    std::size_t target = capacity_;
    if (capacity_ == 0) {
      target = kInitialCapacity;
    } else if (held * 2 > capacity_) {
      target = std::min(std::max(limit_, capacity_), capacity_ * 2);
    }
    target = std::max(target, held + 1);
    if (target == capacity_) {
      std::memmove(buf_.get(), buf_.get() + begin_, held);
    } else {
      auto bigger = std::make_unique_for_overwrite<char[]>(target);
      if (held > 0) std::memcpy(bigger.get(), buf_.get() + begin_, held);
      buf_ = std::move(bigger);
      capacity_ = target;
    }
    begin_ = 0;
    end_ = held;
  }
  const std::size_t n = stream_.read({buf_.get() + end_, capacity_ - end_});
  if (n == 0) {
    eof_ = true;
    return false;
  }
  end_ += n;
  return true;
}

std::size_t BufferedReader::find(std::string_view delimiter, const char* op) {
  std::size_t searched = 0;  // no delimiter starts before this offset in data()
  for (;;) {
    const std::string_view held = data();
    const std::size_t at = held.find(delimiter, searched);
    if (at != std::string_view::npos) {
      if (at + delimiter.size() > limit_) {
        throw LimitOverrunError(limit_message(op, delimiter, limit_, stream_), buffered());
      }
      return at;
    }
    if (held.size() >= limit_) {
      throw LimitOverrunError(limit_message(op, delimiter, limit_, stream_), buffered());
    }
    searched = held.size() >= delimiter.size() ? held.size() - delimiter.size() + 1 : 0;
    if (!fill()) return std::string_view::npos;
  }
}

std::optional<std::string> BufferedReader::read_line() {
  // The common case first: a whole line already buffered, within the limit
  // (a memchr); otherwise find() reads on, or throws at the limit.
  const void* nl = end_ > begin_
                       ? std::memchr(buf_.get() + begin_, '\n', std::min(end_ - begin_, limit_))
                       : nullptr;
  std::size_t at =
      nl != nullptr ? static_cast<std::size_t>(static_cast<const char*>(nl) - (buf_.get() + begin_))
                    : find("\n", "read_line");
  std::size_t taken = at + 1;          // the line and its newline
  if (at == std::string_view::npos) {  // end of stream: the last line, unended
    if (buffered() == 0) return std::nullopt;
    at = taken = buffered();
  }
  const std::string_view line = data().substr(0, at);
  std::string out(line.substr(0, !line.empty() && line.back() == '\r' ? at - 1 : at));
  consume(taken);
  return out;
}

std::string_view BufferedReader::take_until(std::string_view delimiter, const char* op) {
  if (delimiter.empty()) {
    throw std::invalid_argument(std::string("BufferedReader::") + op + ": the delimiter is empty");
  }
  const std::size_t at = find(delimiter, op);
  if (at == std::string_view::npos) {
    std::string partial(data());
    consume(partial.size());
    // The message first: arguments are evaluated in no set order, and the
    // move may empty `partial` before its size is read.
    const std::string what = std::string("BufferedReader::") + op + " on " + stream_.describe() +
                             ": end of stream after " + std::to_string(partial.size()) +
                             " bytes without the delimiter";
    throw IncompleteReadError(what, std::move(partial));
  }
  // consume() moves the indices only: the bytes stay where they are until
  // the next fill().
  const std::string_view record = data().substr(0, at + delimiter.size());
  consume(record.size());
  return record;
}

std::string BufferedReader::read_until(std::string_view delimiter) {
  return std::string(take_until(delimiter, "read_until"));
}

std::string_view BufferedReader::read_slice(std::string_view delimiter) {
  return take_until(delimiter, "read_slice");
}

std::string BufferedReader::read_exactly(std::size_t n) {
  // The string grows as the bytes come, doubling from kInitialCapacity (as
  // asyncio's readexactly): a length prefix from the peer that says 4 GiB
  // commits no memory before the bytes do.
  std::string out;
  std::size_t got = std::min(n, buffered());
  out.resize(std::min(n, std::max(got, kInitialCapacity)));
  if (got > 0) std::memcpy(out.data(), buf_.get() + begin_, got);  // no buffer yet: none
  consume(got);
  try {
    while (got < n && !eof_) {
      if (got == out.size()) out.resize(std::min(n, out.size() * 2));
      const std::size_t r = stream_.read({out.data() + got, out.size() - got});  // past the buffer
      if (r == 0) eof_ = true;
      got += r;
    }
  } catch (...) {
    unread({out.data(), got});  // interrupted: nothing is lost, the next call finds it
    throw;
  }
  if (got < n) {
    out.resize(got);
    throw IncompleteReadError("BufferedReader::read_exactly on " + stream_.describe() +
                                  ": end of stream after " + std::to_string(got) + " of " +
                                  std::to_string(n) + " bytes",
                              std::move(out));
  }
  return out;
}

void BufferedReader::unread(std::string_view bytes) {
  // Only called with the buffer empty (read_exactly emptied it first).
  FIBERLOOP_CHECK(buffered() == 0, "BufferedReader::unread: the buffer is not empty");
  if (bytes.size() > capacity_) {
    // At least the usual size: a buffer made to fit a few bytes would stay
    // that small, and every later fill() would read that few.
    capacity_ = std::max(bytes.size(), kInitialCapacity);
    buf_ = std::make_unique_for_overwrite<char[]>(capacity_);
  }
  if (!bytes.empty()) std::memcpy(buf_.get(), bytes.data(), bytes.size());
  begin_ = 0;
  end_ = bytes.size();
}

std::size_t BufferedReader::read(std::span<char> buf) {
  if (buf.empty()) return 0;
  if (buffered() == 0) {
    if (eof_) return 0;
    // A large read goes straight to the caller's buffer; a small one fills
    // ours, so that the next small reads cost no system call.
    if (buf.size() >= std::max(capacity_, kInitialCapacity)) {
      const std::size_t n = stream_.read(buf);
      if (n == 0) eof_ = true;
      return n;
    }
    if (!fill()) return 0;
  }
  const std::size_t n = std::min(buf.size(), buffered());
  std::memcpy(buf.data(), buf_.get() + begin_, n);
  consume(n);
  return n;
}

Generator<std::string> BufferedReader::lines() {
  return Generator<std::string>([this](Generator<std::string>::Context& co) {
    while (std::optional<std::string> line = read_line()) co.yield(std::move(*line));
  });
}

}  // namespace fiberloop
