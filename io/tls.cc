// TlsStream: the handshake, reads and writes driven through OpenSSL, parking
// the fiber while OpenSSL waits for the socket. TlsContext is in
// tls_context.cc.
#include "io/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "io/internal/by_deadline.h"
#include "io/internal/c_string.h"
#include "io/internal/tls_bio.h"
#include "io/internal/tls_claim.h"
#include "io/internal/tls_context_state.h"
#include "loop/errors.h"
#include "loop/internal/deadline.h"

namespace fiberloop {

namespace {

using internal::openssl_reasons;

// The most plaintext one TLS record carries: a write_some takes at most this.
constexpr std::size_t kMaxRecord = SSL3_RT_MAX_PLAIN_LENGTH;
// The most a read lets wait unsent (KeyUpdate answers to a peer that does
// not read) before it gives the connection up.
constexpr std::size_t kMaxUnsentByReads = std::size_t{1} << 20;

// Whether `name` is an IPv4 or IPv6 address rather than a host name.
bool is_ip_address(const std::string& name) {
  unsigned char addr[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, name.c_str(), addr) == 1 ||
         ::inet_pton(AF_INET6, name.c_str(), addr) == 1;
}

// What Loop::dump() names a TLS operation's wait on its socket by ("TLS
// read"): a string literal, as the dump keeps it.
const char* tls_call(std::string_view op) {
  for (const char* call : {"TLS handshake", "TLS read", "TLS write", "TLS shutdown"}) {
    if (op == call + 4) return call;
  }
  return "TLS";
}

}  // namespace

// ---- TlsStream ---------------------------------------------------------------

TlsStream::TlsStream(TcpStream tcp, const TlsContext& context, std::string peer_name)
    : tcp_(std::move(tcp)), context_(context.state_) {
  std::string address = tcp_.describe();  // "fd 7", if the peer's address is unknown
  try {
    address = tcp_.peer_address().to_string();
  } catch (const std::system_error&) {
  }
  peer_ = peer_name.empty() ? address : address + " (" + peer_name + ")";
  ssl_ = SSL_new(context_->ctx);
  BIO* bio = BIO_new(internal::socket_bio());
  if (ssl_ == nullptr || bio == nullptr) {
    BIO_free(bio);
    throw TlsError("TLS with " + peer_ +
                   ": cannot make the connection's state: " + openssl_reasons());
  }
  internal::set_bio_socket(bio, tcp_.socket_.handle());
  SSL_set_bio(ssl_, bio, bio);
  // The connection's deadlines bound the handshake, and carry over.
  set_read_deadline(tcp_.read_deadline());
  set_write_deadline(tcp_.write_deadline());
}

// Operations under way in `other` wait on what moves here: they are let go
// of first (claims, then directions in Stream's move), before anything moves.
TlsStream::TlsStream(TlsStream&& other) noexcept
    : Stream((internal::let_go_of_claims(other.claims_), std::move(other))),
      tcp_(std::move(other.tcp_)),
      ssl_(std::exchange(other.ssl_, nullptr)),
      context_(std::move(other.context_)),
      peer_(std::move(other.peer_)),
      write_broken_(std::exchange(other.write_broken_, false)),
      close_notify_sent_(std::exchange(other.close_notify_sent_, false)) {}

TlsStream& TlsStream::operator=(TlsStream&& other) noexcept {
  if (this != &other) {
    internal::let_go_of_claims(other.claims_);
    Stream::operator=(std::move(other));  // closes, and lets go of operations
    internal::let_go_of_claims(claims_);
    SSL_free(ssl_);
    tcp_ = std::move(other.tcp_);
    ssl_ = std::exchange(other.ssl_, nullptr);
    context_ = std::move(other.context_);
    peer_ = std::move(other.peer_);
    write_broken_ = std::exchange(other.write_broken_, false);
    close_notify_sent_ = std::exchange(other.close_notify_sent_, false);
  }
  return *this;
}

TlsStream::~TlsStream() {
  // Operations parked in it, on any loop, are woken by the close (and then
  // make no SSL call) and let go of (they unwind without touching it).
  end_operations();
  internal::let_go_of_claims(claims_);
  SSL_free(ssl_);
}

TlsStream TlsStream::connect(std::string_view host, std::uint16_t port, const TlsContext& context) {
  return client(TcpStream::connect(host, port), context, host);
}

TlsStream TlsStream::client(TcpStream connection, const TlsContext& context,
                            std::string_view host) {
  internal::require_c_string(host, "TlsStream::client host");  // SNI and the name checked
  TlsStream s(std::move(connection), context, std::string(host));
  const std::string name(host);
  const bool is_ip = is_ip_address(name);
  if (!is_ip && !name.empty()) SSL_set_tlsext_host_name(s.ssl_, name.c_str());  // SNI
  if (SSL_CTX_get_verify_mode(context.state_->ctx) != SSL_VERIFY_NONE) {
    // OpenSSL takes an empty name as "check no name": any certificate the
    // CAs signed would pass. Python's ssl refuses this too.
    if (name.empty()) {
      throw std::invalid_argument("TLS with " + s.peer_ +
                                  ": no host name to verify the certificate against; pass the "
                                  "server's name or IP address (or set_verify_peer(false) on "
                                  "the context, for tests only)");
    }
    X509_VERIFY_PARAM* param = SSL_get0_param(s.ssl_);
    const int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                         : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    if (ok != 1) throw TlsError("TLS with " + s.peer_ + ": bad host name to verify: " + name);
  }
  SSL_set_connect_state(s.ssl_);
  s.handshake();
  return s;
}

TlsStream TlsStream::accept(TcpStream connection, const TlsContext& context) {
  TlsStream s(std::move(connection), context, "");
  SSL_set_accept_state(s.ssl_);
  s.handshake();
  return s;
}

void TlsStream::handshake() {
  const auto step = [this] {
    // With SSL_OP_IGNORE_UNEXPECTED_EOF a TCP end reads as a clean end of
    // stream, which mid-handshake is no connection at all.
    if (drive(
            "handshake", [this] { return SSL_do_handshake(ssl_); }, Output::kSendAll) == 0) {
      throw TlsError("TLS handshake with " + peer_ +
                     ": the peer closed the connection before the handshake finished");
    }
  };
  const TimePoint deadline = std::min(read_deadline(), write_deadline());
  if (deadline == TimePoint::max()) {
    step();
    return;
  }
  internal::run_by_deadline(
      deadline, "the TLS handshake deadline (the stream's)", nullptr,
      [this] {
        return "the TLS handshake with " + peer_ +
               ": the stream's deadline has passed (set_deadline on the TcpStream)";
      },
      [] { return std::string(); }, step);
}

void TlsStream::check_open(const char* op) const {
  if (ssl_ == nullptr || !tcp_.is_open()) {
    throw std::system_error(EBADF, std::generic_category(),
                            std::string("TLS ") + op + " with " + peer_ +
                                ": the stream is closed (or empty: moved from)");
  }
}

void TlsStream::send_unsent(const internal::TlsClaim& claim, const char* op, bool wait) {
  BIO* bio = SSL_get_wbio(ssl_);
  while (internal::bio_unsent_bytes(bio) != 0) {
    const int err = internal::bio_send_unsent(bio);
    if (err == 0) return;
    if (!wait) {
      // A read: a failed send is kept, and the read reports it when it
      // finds the connection's end (tls_bio.cc). Answers to a peer that asks
      // for key updates but never reads them pile up: bounded.
      if (internal::bio_unsent_bytes(bio) > kMaxUnsentByReads) {
        throw TlsError("TLS " + std::string(op) + " with " + peer_ +
                       ": the peer asks for key updates and does not read the answers (" +
                       std::to_string(kMaxUnsentByReads >> 20) +
                       " MiB unsent); the connection is given up");
      }
      return;
    }
    if (err != EAGAIN) {
      throw std::system_error(err, std::generic_category(),
                              std::string("TLS ") + op + " with " + peer_);
    }
    wait_socket(claim, op, /*readable=*/false);
  }
}

void TlsStream::wait_socket(const internal::TlsClaim& claim, const char* op, bool readable) {
  try {
    if (readable) {
      tcp_.socket_.wait_readable(tls_call(op));
    } else {
      tcp_.socket_.wait_writable(tls_call(op));
    }
  } catch (const std::system_error& e) {
    if (e.code().value() != EBADF) throw;
    // Closed while it waited. Let go of (destroyed, moved from): the stream
    // may be gone, so say so without touching it.
    if (!claim.holds()) internal::throw_let_go((std::string("TLS ") + op).c_str());
    throw std::system_error(EBADF, std::generic_category(),
                            std::string("TLS ") + op + " with " + peer_ +
                                ": the stream was closed while this operation waited");
  }
  // Let go of while it waited (the stream moved from, or destroyed with its
  // socket gone elsewhere): no more SSL calls on it.
  if (!claim.holds()) internal::throw_let_go((std::string("TLS ") + op).c_str());
}

template <class Call>
int TlsStream::drive(const char* op, Call call, Output output, bool breaks_writes) {
  check_open(op);
  // One thread's fibers at a time (a loop's, or a thread's without a
  // loop): OpenSSL's connection state is one thread's, and a fiber parked
  // in an operation is still in the middle of it.
  const internal::TlsClaim claim(claims_, op, peer_);
  const bool send_all = output == Output::kSendAll;
  try {
    for (;;) {
      ERR_clear_error();
      errno = 0;  // so that an SSL_ERROR_SYSCALL without a failed call shows none
      const int r = call();
      const int saved_errno = errno;
      const int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_NONE || e == SSL_ERROR_ZERO_RETURN) {
        send_unsent(claim, op, send_all);
        return r > 0 ? r : 0;
      }
      if (e == SSL_ERROR_WANT_READ) {
        // What this step wrote goes out before it waits for the answer (a
        // handshake's flight); a read's reply to the peer (a KeyUpdate's)
        // goes when the socket takes it.
        send_unsent(claim, op, send_all);
        wait_socket(claim, op, /*readable=*/true);
      } else if (e == SSL_ERROR_WANT_WRITE) {  // (the BIO takes every write: not seen)
        wait_socket(claim, op, /*readable=*/false);
      } else {
        fail(op, e, saved_errno);
      }
    }
  } catch (const Cancelled&) {
    // Interrupted after OpenSSL took the caller's bytes into records the
    // socket has not all taken: how many of them the peer will get is
    // unknown. (An error of the connection itself OpenSSL reports again.)
    // Not if the stream let go of this operation meanwhile.
    if (breaks_writes && claim.holds()) write_broken_ = true;
    throw;
  } catch (const TimeoutError&) {
    if (breaks_writes && claim.holds()) write_broken_ = true;
    throw;
  }
}

void TlsStream::fail(const char* op, int ssl_error, int sys_errno) {
  const std::string where = std::string("TLS ") + op + " with " + peer_;
  if (ssl_error == SSL_ERROR_SYSCALL && sys_errno != 0) {
    throw std::system_error(sys_errno, std::generic_category(), where);
  }
  std::string reason = openssl_reasons();
  // The certificate's verdict explains a failed handshake; after one, it is
  // stale (a peer accepted with verification off keeps its verdict).
  const long verify = std::string_view(op) == "handshake" ? SSL_get_verify_result(ssl_) : X509_V_OK;
  if (verify != X509_V_OK) {
    reason += std::string(reason.empty() ? "" : ": ") + X509_verify_cert_error_string(verify);
  }
  if (reason.empty()) reason = "the peer closed the connection";
  throw TlsError(where + ": " + reason);
}

std::size_t TlsStream::read_some(std::span<char> buf) {
  if (buf.empty()) return 0;
  const int length = static_cast<int>(std::min<std::size_t>(buf.size(), INT_MAX));
  return static_cast<std::size_t>(drive(
      "read", [&] { return SSL_read(ssl_, buf.data(), length); }, Output::kWhenAble));
}

std::size_t TlsStream::write_some(std::span<const char> buf) {
  if (buf.empty()) return 0;
  if (write_broken_) {
    throw TlsError("TLS write with " + peer_ +
                   ": an earlier write was interrupted (cancelled or timed out) in the middle of "
                   "a record, so the stream can no longer be written (as in Go); close it");
  }
  // What a read wrote and the socket did not take yet goes first: an
  // interrupt while it waits costs this call none of its bytes.
  check_open("write");
  {
    const internal::TlsClaim claim(claims_, "write", peer_);
    send_unsent(claim, "write", /*wait=*/true);
  }
  // One record at a time: the BIO keeps what the socket does not take,
  // and this bounds it.
  const int length = static_cast<int>(std::min<std::size_t>(buf.size(), kMaxRecord));
  const int n = drive(
      "write", [&] { return SSL_write(ssl_, buf.data(), length); }, Output::kSendAll,
      /*breaks_writes=*/true);
  if (n == 0) {  // the peer's close_notify came while we wrote
    throw std::system_error(EPIPE, std::generic_category(), "TLS write with " + peer_);
  }
  return static_cast<std::size_t>(n);
}

void TlsStream::shutdown_write() {
  // Sent once the alert is queued and the socket took every byte: a call
  // after an interrupted one sends what is left (the BIO keeps it).
  if (close_notify_sent_ && ssl_ != nullptr &&
      internal::bio_unsent_bytes(SSL_get_wbio(ssl_)) == 0) {
    return;
  }
  if (write_broken_) {
    throw TlsError("TLS shutdown with " + peer_ +
                   ": an earlier write was interrupted in the middle of a record, and "
                   "close_notify cannot follow half a record; close the stream instead");
  }
  // A write: under the write deadline, and never while another fiber is in
  // SSL_write (the alert would cut its record, and OpenSSL refuse its rest).
  run_as_write(
      [](void* self) {
        auto& s = *static_cast<TlsStream*>(self);
        // SSL_shutdown: 0 once our close_notify is sent (we do not wait for
        // the peer's), 1 if the peer's came first; < 0 to retry. The flag is
        // set under the claim: once drive() gives it back, a destroyer on
        // another thread may free the stream.
        s.drive(
            "shutdown",
            [&s] {
              if (s.close_notify_sent_) return 1;  // queued: what is left goes below
              const int r = SSL_shutdown(s.ssl_);
              if (r >= 0) s.close_notify_sent_ = true;
              return r >= 0 ? 1 : r;
            },
            Output::kSendAll);
      },
      this);
}

void TlsStream::close() noexcept { tcp_.close(); }

std::string TlsStream::alpn_protocol() const {
  const unsigned char* name = nullptr;
  unsigned length = 0;
  if (ssl_ != nullptr) SSL_get0_alpn_selected(ssl_, &name, &length);
  return std::string(reinterpret_cast<const char*>(name), name != nullptr ? length : 0);
}

std::string TlsStream::protocol_version() const {
  return ssl_ != nullptr ? SSL_get_version(ssl_) : "";
}

std::string TlsStream::describe() const { return "TLS " + tcp_.describe() + " with " + peer_; }

}  // namespace fiberloop
