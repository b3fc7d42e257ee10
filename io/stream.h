// Stream: the interface every byte stream implements (TcpStream, UnixStream,
// TlsStream, a Process's pipes, and a user's own class), and what layers such
// as BufferedReader and TlsStream wrap.
//
//   char buf[4096];
//   while (std::size_t n = stream.read(buf)) stream.write_all({buf, n});   // echo
//
// Every operation that must wait parks only the calling fiber, and honours
// cancellation, with_timeout() and the stream's own deadlines (Go's
// SetDeadline). One fiber may read while another writes; two fibers reading
// (or writing) one socket stream at once is a std::logic_error. Closing a
// stream wakes fibers waiting on it: their operation throws std::system_error
// (EBADF). Writes never raise SIGPIPE: a closed peer is an EPIPE or
// ECONNRESET std::system_error.
//
// Implementing a stream: derive from Stream and override read_some,
// write_some, shutdown_write, close and is_open (and writev_some if the
// stream can write several buffers in one go, describe() for messages). The public operations add
// the deadlines and the loops (read_exact, write_all) around them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

#include "io/internal/text_bytes.h"
#include "loop/options.h"  // TimePoint

namespace fiberloop {
namespace internal {
struct DeadlineOp;  // io/internal/by_deadline.h
class Scheduler;

// One direction of a stream (its reads, or its writes): the deadline, and
// the operation under way with the loop (and that loop's serial) running it.
// An operation claims `op` with a compare-and-swap and names its loop before
// it publishes itself there (io/internal/by_deadline.h); setters and the
// stream's destructor reach it on that loop's thread (reach_operation).
struct StreamDirection {
  std::atomic<TimePoint> deadline{TimePoint::max()};
  std::atomic<DeadlineOp*> op{nullptr};
  std::atomic<Scheduler*> loop{nullptr};
  std::atomic<std::uint64_t> serial{0};
};
}  // namespace internal

// Thrown by read_exact() when the stream ends first.
class EndOfStream : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Stream {
 public:
  // Lets go of the operations still under way (see end_operations()).
  virtual ~Stream();

  // Reads what is available (at least one byte), waiting until something is.
  // Returns: the byte count; 0 at end of stream (the peer shut down writing).
  // An empty `buf` returns 0 at once without reading (as Rust's Read does):
  // a loop that reads into what is left of a buffer must stop when it is
  // full, not take that 0 for the end of the stream.
  // Throws: std::system_error naming the stream (ECONNRESET, EBADF if closed
  //         while waiting...); TimeoutError past the read deadline;
  //         Cancelled; TimeoutError from with_timeout(); std::logic_error
  //         while another fiber reads the stream (one reader at a time).
  std::size_t read(std::span<char> buf);

  // Reads exactly buf.size() bytes: one operation, in the reads' direction
  // from start to end, whose deadline is checked as it starts and wherever
  // it waits (Go's rule for a Write; nothing for an empty `buf`).
  // Throws: EndOfStream (saying how many bytes came) if the stream ends first;
  //         what read() throws (a std::system_error after some bytes came
  //         says how many: "read fd 7 (read_exact, after 2 of 4 bytes):
  //         Connection reset by peer"). Interrupted (Cancelled, TimeoutError), the
  //         bytes read so far are in buf but their count is lost: read a
  //         stream whose reads may be interrupted mid-record through a
  //         BufferedReader, whose read_exactly keeps them.
  void read_exact(std::span<char> buf);

  // Writes some of `buf` (at least one byte), waiting for room.
  // Returns: the byte count; 0 for an empty `buf`, at once.
  // Throws: std::system_error naming the stream (EPIPE, ECONNRESET...);
  //         TimeoutError past the write deadline; Cancelled; TimeoutError;
  //         std::logic_error while another fiber writes it.
  std::size_t write(std::span<const char> buf);
  // A string literal without its terminating NUL (write("abc") writes up to
  // 3 bytes); a mutable char buffer does not compile (internal/text_bytes.h).
  template <internal::CharArrayElement C, std::size_t N>
  std::size_t write(C (&text)[N]) {
    return write(internal::text_bytes(text));
  }
  // Writes some of `buffers`, in order, in one system call where the stream
  // can (writev). Returns: the byte count, at least one unless every buffer
  // is empty. Throws: what write() throws.
  std::size_t writev(std::span<const std::string_view> buffers);

  // Writes all of `data`: one operation, in the writes' direction from
  // start to end, whose deadline is checked as it starts and wherever it
  // waits (Go's Write; nothing for empty `data`). Throws: what write()
  // throws (a std::system_error after some bytes went says how many, as
  // read_exact's does).
  void write_all(std::string_view data);
  // Writes all of `buffers`, in order, gathering them into as few system
  // calls as the stream can (writev): a header and a body in one go. One
  // operation, as write_all(data). Throws: what write() throws.
  void write_all(std::span<const std::string_view> buffers);
  void write_all(std::initializer_list<std::string_view> buffers) {
    write_all(std::span<const std::string_view>(buffers.begin(), buffers.size()));
  }

  // Sends end of stream to the peer; reading still works.
  virtual void shutdown_write() = 0;
  // Closes the stream (wakes fibers waiting on it). Idempotent.
  virtual void close() noexcept = 0;
  // False once closed (or moved from).
  virtual bool is_open() const noexcept = 0;
  // What error messages call the stream: "fd 7", "TLS fd 7 to example.com",
  // "stdout of pid 4242". Default: "a stream".
  virtual std::string describe() const { return "a stream"; }

  // Go's deadlines: an absolute time after which operations fail. A read (or
  // write) that has not finished by its deadline throws TimeoutError, and so
  // does every one started after it, until the deadline is moved;
  // TimePoint::max() (the default) clears it. Setting or moving a deadline
  // applies to an operation already waiting, as in Go: a past deadline
  // wakes it with TimeoutError (another fiber's set_read_deadline(now) stops
  // a blocked read), max() lets it wait on. Unlike with_timeout(), a
  // deadline belongs to the stream: set it once per request, not per call.
  // Any thread or loop, as in Go: the loop whose fibers run the stream's
  // operations applies it (a setter on another thread waits for that, a
  // fiber parking). Throws: std::bad_alloc (re-arming a parked operation's
  // timer).
  void set_deadline(TimePoint at) {
    set_read_deadline(at);
    set_write_deadline(at);
  }
  void set_read_deadline(TimePoint at);
  void set_write_deadline(TimePoint at);
  TimePoint read_deadline() const noexcept { return read_.deadline.load(); }
  TimePoint write_deadline() const noexcept { return write_.deadline.load(); }

 protected:
  Stream() = default;
  // Moving a stream moves its deadlines, not an operation under way: one
  // in the stream moved from is let go of (it finishes its call, or throws
  // EBADF between calls, and touches the moved-from stream no more). The
  // stream assigned to is closed first (the derived class's close()), and
  // its operations under way let go of, as by the destructor: a derived
  // class's assignment calls this before it replaces its own members.
  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;

  // Closes the stream (close()) and lets go of the operations under way,
  // on any loop: each one, woken by the close, ends and never touches the
  // stream again, provided close() makes a parked read_some or write_some
  // throw without touching the stream (the library's streams do; a
  // composite such as read_exact checks between its calls itself). One on
  // another loop is let go of there, between two steps of its fibers: the
  // caller waits for that step, not for the operation. The most-derived
  // class's destructor calls it first, before anything of the object goes
  // (an operation on another thread may be in a member, or in a virtual
  // call, until it is let go of). ~Stream lets go too, but late for that; a
  // move-assignment calls it. Destroy a stream once every operation on it
  // has started (a fiber of another loop is inside read()), not while one
  // may be about to: that is a use of a destroyed object.
  void end_operations() noexcept;

  // What a stream implements. Each waits as read() and write() describe,
  // honouring cancellation and with_timeout() (parking through the loop does).
  virtual std::size_t read_some(std::span<char> buf) = 0;
  virtual std::size_t write_some(std::span<const char> buf) = 0;
  // Default: write_some() of the first non-empty buffer.
  virtual std::size_t writev_some(std::span<const std::string_view> buffers);
  // Runs op(arg) as a write: under the write deadline, and refused (with
  // std::logic_error) while another fiber writes. For a shutdown_write()
  // that sends bytes and may park (TLS's close_notify).
  void run_as_write(void (*op)(void* arg), void* arg);

 private:
  // Go's deadlines and the operations under way, a direction each (one
  // operation per direction at a time: a second one, from any loop, is
  // refused with std::logic_error when it finds the slot taken). The
  // operations' timers are their loop's: a deadline set from another
  // thread is applied there (io/stream.cc).
  internal::StreamDirection read_;
  internal::StreamDirection write_;

  void let_go_of_operations() noexcept;

  void set_direction_deadline(internal::StreamDirection& direction, TimePoint at);
};

}  // namespace fiberloop
