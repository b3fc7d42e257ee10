// OpenSSL's side of TlsStream: the socket BIO it reads and writes through,
// and its error queue turned into text for messages.
#include "io/internal/tls_bio.h"

#include "io/internal/io_handle.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <new>
#include <string>
#include <system_error>
#include <utility>

namespace fiberloop::internal {

// OpenSSL's reasons for the last failure, oldest first, and its queue
// emptied: "certificate verify failed".
std::string openssl_reasons() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    // "system lib" only says that a system call failed, which the entry
    // carrying its errno says better.
    if (!ERR_SYSTEM_ERROR(e) && ERR_GET_REASON(e) == ERR_R_SYS_LIB) continue;
    std::string reason;
    if (ERR_SYSTEM_ERROR(e)) {  // a system call failed: errno in the reason
      reason = std::generic_category().message(ERR_GET_REASON(e));  // thread-safe
    } else if (const char* r = ERR_reason_error_string(e)) {
      reason = r;
    } else {
      reason = "error " + std::to_string(ERR_GET_REASON(e));
    }
    if (out.ends_with(reason)) continue;  // the same reason again, from another layer
    if (!out.empty()) out += "; ";
    out += reason;
  }
  return out;
}

namespace {

// Unsent bytes already sent are dropped from the front of the buffer once
// they are this many (until then only an offset moves).
constexpr std::size_t kCompactAfter = 64 * 1024;

// The BIO between OpenSSL and the socket: fiberloop's own non-blocking
// calls (send with MSG_NOSIGNAL). A read that finds nothing is "retry", so
// that OpenSSL returns WANT_READ and the fiber parks. A write is always
// taken whole: what the socket does not take now is kept here, in order,
// for TlsStream to send (bio_send_unsent). So OpenSSL never holds half a
// record between calls, and a read that must write (the reply to a peer's
// TLS 1.3 KeyUpdate) can do so while a writer waits for the socket: with
// OpenSSL holding the writer's half record, that read failed the
// connection ("bad length"). Each call goes through the socket's
// IoHandle::with_fd, as every socket call does: from a fiber of another
// loop than the socket's, it holds the fd, so a close meanwhile cannot hand
// its number to another file under it (a closed socket is EBADF here, an
// exception never crosses OpenSSL's frames). It remembers the TCP end of
// stream for BIO_CTRL_EOF, which is how OpenSSL tells a ragged end (no
// close_notify) from a broken connection.
struct BioState {
  IoHandle* socket = nullptr;
  bool eof = false;
  std::string unsent;    // written by OpenSSL, not yet taken by the socket
  std::size_t sent = 0;  // of `unsent`, the bytes taken since (a prefix)
  // The first send of kept bytes that failed for good (ECONNRESET, EPIPE).
  // The kernel reports a reset once, to whichever call comes first: a read
  // that later finds the TCP end reports this instead of a clean end.
  int send_error = 0;
};

BioState& state_of(BIO* bio) { return *static_cast<BioState*>(BIO_get_data(bio)); }

// `call(fd)` on the BIO's socket, EINTR retried. Returns: its result, or -1
// with errno set (EBADF once the socket is closed).
template <class Call>
ssize_t on_socket(BIO* bio, const char* op, Call call) noexcept {
  for (;;) {
    ssize_t n = -1;
    try {
      n = state_of(bio).socket->with_fd(op, call);
    } catch (const std::system_error& e) {
      errno = e.code().value();
      return -1;
    }
    if (n >= 0 || errno != EINTR) return n;
  }
}

ssize_t send_on(BIO* bio, const char* data, std::size_t length) noexcept {
  return on_socket(bio, "TLS write",
                   [&](int fd) { return ::send(fd, data, length, MSG_NOSIGNAL); });
}

// Sends what it can of the unsent bytes. Returns 0 once none is left, else
// errno (EAGAIN: the socket is full).
int send_some_unsent(BIO* bio) noexcept {
  BioState& st = state_of(bio);
  while (st.sent < st.unsent.size()) {
    const ssize_t n = send_on(bio, st.unsent.data() + st.sent, st.unsent.size() - st.sent);
    if (n < 0) {
      const int err = errno == EWOULDBLOCK ? EAGAIN : errno;
      if (err != EAGAIN && st.send_error == 0) st.send_error = err;
      // (A long wait behind a full socket: the sent prefix goes.)
      if (st.sent >= kCompactAfter) st.unsent.erase(0, std::exchange(st.sent, 0));
      return err;
    }
    st.sent += static_cast<std::size_t>(n);
  }
  // Its capacity stays (no allocation per record), unless a long wait grew
  // it past what records need.
  if (st.unsent.capacity() > kCompactAfter) {
    std::string().swap(st.unsent);
  } else {
    st.unsent.clear();
  }
  st.sent = 0;
  return 0;
}

int bio_write(BIO* bio, const char* data, int length) {
  BIO_clear_retry_flags(bio);
  BioState& st = state_of(bio);
  const auto size = static_cast<std::size_t>(length);
  std::size_t taken = 0;
  if (st.unsent.empty()) {  // else these bytes go after those, sent by TlsStream
    const ssize_t n = send_on(bio, data, size);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -1;  // OpenSSL reports errno
    taken = n < 0 ? 0 : static_cast<std::size_t>(n);
  }
  if (taken < size) {
    try {
      st.unsent.append(data + taken, size - taken);
    } catch (const std::bad_alloc&) {
      errno = ENOMEM;
      return -1;
    }
  }
  return length;
}

int bio_read(BIO* bio, char* data, int length) {
  BIO_clear_retry_flags(bio);
  const ssize_t n = on_socket(
      bio, "TLS read", [&](int fd) { return ::read(fd, data, static_cast<std::size_t>(length)); });
  if (n == 0) {
    if (const int err = state_of(bio).send_error) {  // a reset, not an end
      errno = err;
      return -1;
    }
    state_of(bio).eof = true;
  }
  if (n >= 0) return static_cast<int>(n);
  if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(bio);
  return -1;
}

long bio_ctrl(BIO* bio, int command, long, void*) {
  switch (command) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_EOF:
      return state_of(bio).eof ? 1 : 0;
    default:
      return 0;
  }
}

}  // namespace

BIO_METHOD* socket_bio() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "fiberloop socket");
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, [](BIO* b) {
      BIO_set_data(b, new BioState);
      BIO_set_init(b, 1);
      return 1;
    });
    BIO_meth_set_destroy(m, [](BIO* b) {
      delete static_cast<BioState*>(BIO_get_data(b));
      BIO_set_data(b, nullptr);
      return 1;
    });
    return m;
  }();
  return method;
}

void set_bio_socket(BIO* bio, IoHandle* socket) { state_of(bio).socket = socket; }

std::size_t bio_unsent_bytes(BIO* bio) {
  const BioState& st = state_of(bio);
  return st.unsent.size() - st.sent;
}

int bio_send_unsent(BIO* bio) { return send_some_unsent(bio); }

}  // namespace fiberloop::internal
