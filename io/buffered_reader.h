// BufferedReader: lines, delimited records and exact byte counts from any
// Stream (asyncio's StreamReader, Go's bufio.Reader).
//
//   fiberloop::BufferedReader in(conn);
//   while (auto line = in.read_line()) conn.write_all(*line + "\n");
//
// The reader looks at most `limit` bytes ahead for a delimiter, and holds
// at most max(limit, 64 KiB): a peer that never sends the delimiter gets
// LimitOverrunError, not our memory. Reads wait as Stream::read() does
// (cancellation, with_timeout(), the stream's deadlines). One fiber uses a
// reader at a time; the stream must outlive it. Bytes it buffered are not in
// the stream any more: once a stream is read through a BufferedReader, read
// it only through that reader.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fiber/generator.h"
#include "io/stream.h"

namespace fiberloop {

// The stream ended before what was asked for came (asyncio's
// IncompleteReadError). The bytes that did come are consumed: partial()
// holds them.
class IncompleteReadError : public std::runtime_error {
 public:
  IncompleteReadError(const std::string& what, std::string partial)
      : std::runtime_error(what), partial_(std::move(partial)) {}
  const std::string& partial() const noexcept { return partial_; }

 private:
  std::string partial_;
};

// No delimiter within the reader's limit (asyncio's LimitOverrunError). The
// bytes stay buffered: read() or read_exactly() can still take them, though
// a line protocol usually closes the connection.
class LimitOverrunError : public std::runtime_error {
 public:
  LimitOverrunError(const std::string& what, std::size_t buffered)
      : std::runtime_error(what), buffered_(buffered) {}
  // How many bytes were buffered when the limit was hit (a delimiter past
  // the limit may be among them).
  std::size_t buffered() const noexcept { return buffered_; }

 private:
  std::size_t buffered_;
};

class BufferedReader {
 public:
  static constexpr std::size_t kDefaultLimit = 64 * 1024;

  // `limit`: the longest line or record, delimiter included, in bytes (at
  // least 1). The buffer (allocated at the first read) is 64 KiB, and grows
  // toward a larger limit only for a record that needs it.
  // Throws: std::invalid_argument for a limit of 0.
  explicit BufferedReader(Stream& stream, std::size_t limit = kDefaultLimit);
  BufferedReader(const BufferedReader&) = delete;
  BufferedReader& operator=(const BufferedReader&) = delete;

  // The next line, without its "\n" (and a "\r" before it). At end of
  // stream, the last line even if no "\n" ends it, without a final "\r"
  // (as Go's bufio.ScanLines: a CRLF text cut before its last "\n" reads
  // the same), then nullopt.
  // Throws: LimitOverrunError; what Stream::read() throws.
  std::optional<std::string> read_line();

  // Bytes up to and including the next `delimiter` (not empty).
  // Throws: IncompleteReadError at end of stream (partial(): the rest);
  //         LimitOverrunError; std::invalid_argument for an empty
  //         delimiter; what Stream::read() throws.
  std::string read_until(std::string_view delimiter);

  // read_until() without the copy (Go's bufio.Reader.ReadSlice): a view of
  // the bytes up to and including `delimiter`, in the reader's buffer. The
  // view is valid until the next call on this reader (or its destruction).
  // Throws: as read_until().
  std::string_view read_slice(std::string_view delimiter);

  // Exactly `n` bytes (any size: `limit` does not apply; the string grows
  // as the bytes come, so a huge `n` from a peer costs nothing up front,
  // as asyncio's readexactly). Interrupted
  // (Cancelled, TimeoutError), it keeps what it read buffered for the next
  // call, as every reader call does.
  // Throws: IncompleteReadError at end of stream (partial(): what came);
  //         what Stream::read() throws.
  std::string read_exactly(std::size_t n);

  // Buffered bytes first; otherwise what one read of the stream brings
  // (at least one byte). Returns: the byte count; 0 at end of stream.
  // Throws: what Stream::read() throws.
  std::size_t read(std::span<char> buf);

  // read_line() until end of stream (Python's `for line in file`). The
  // generator runs on its own small stack; destroy it to stop early.
  Generator<std::string> lines();

  // Bytes read from the stream and not yet handed out.
  std::size_t buffered() const noexcept { return end_ - begin_; }
  Stream& stream() noexcept { return stream_; }

 private:
  std::string_view data() const noexcept { return {buf_.get() + begin_, end_ - begin_}; }
  void consume(std::size_t n) noexcept;
  // Puts `bytes` back as the buffer's contents (it must be empty): what an
  // interrupted read_exactly had taken. Throws: std::bad_alloc.
  void unread(std::string_view bytes);
  // Reads more into the buffer (moving or growing it as needed), up to
  // `limit_` bytes buffered. Returns: false at end of stream.
  bool fill();
  // The offset in data() of the first `delimiter`, reading as needed;
  // npos at end of stream without one. Throws: LimitOverrunError.
  std::size_t find(std::string_view delimiter, const char* op);
  // read_until() and read_slice(), named `op` in errors.
  std::string_view take_until(std::string_view delimiter, const char* op);

  Stream& stream_;
  const std::size_t limit_;
  std::unique_ptr<char[]> buf_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;  // data() is [begin_, end_)
  std::size_t end_ = 0;
  bool eof_ = false;
};

}  // namespace fiberloop
