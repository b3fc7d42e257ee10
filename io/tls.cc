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
#include "loop/errors.h"
#include "loop/internal/deadline.h"

namespace fiberloop {

struct TlsContext::State {
  ~State() { SSL_CTX_free(ctx); }
  SSL_CTX* ctx = nullptr;
  bool server = false;
  std::vector<unsigned char> alpn;  // ALPN wire format: length-prefixed names
};

namespace {

using internal::openssl_reasons;

[[noreturn]] void context_error(const std::string& what) {
  const std::string reasons = openssl_reasons();
  throw TlsError("TlsContext: " + what + (reasons.empty() ? "" : ": " + reasons));
}

std::shared_ptr<TlsContext::State> new_context(bool server) {
  auto state = std::make_shared<TlsContext::State>();
  state->server = server;
  state->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (state->ctx == nullptr) context_error("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(state->ctx, TLS1_2_VERSION);
  // A peer's TCP end without close_notify reads as end of stream (the
  // stream's read returns 0), as Python's ssl module does by default.
  SSL_CTX_set_options(state->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  // No TLS 1.2 renegotiation, either way (Go's default): it makes a read
  // write and a write read, which one reader and one writer parked at once
  // cannot do; TLS 1.3 has none.
  SSL_CTX_set_options(state->ctx, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(state->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
  return state;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length,
                const unsigned char* offered, unsigned offered_length, void* arg) {
  const auto& ours = static_cast<TlsContext::State*>(arg)->alpn;
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, out_length, ours.data(), static_cast<unsigned>(ours.size()),
                            offered, offered_length) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // nothing in common: go on without ALPN
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

// Whether `name` is an IPv4 or IPv6 address rather than a host name.
bool is_ip_address(const std::string& name) {
  unsigned char addr[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, name.c_str(), addr) == 1 ||
         ::inet_pton(AF_INET6, name.c_str(), addr) == 1;
}

}  // namespace

// ---- TlsContext --------------------------------------------------------------

TlsContext TlsContext::client() {
  TlsContext c(new_context(false));
  if (SSL_CTX_set_default_verify_paths(c.state_->ctx) != 1) context_error("the system's CAs");
  c.set_verify_peer(true);
  return c;
}

TlsContext TlsContext::server(const std::string& cert_chain_pem, const std::string& key_pem) {
  TlsContext c(new_context(true));
  c.load_cert_chain(cert_chain_pem, key_pem);
  return c;
}

void TlsContext::load_verify_file(const std::string& ca_pem) {
  if (SSL_CTX_load_verify_locations(state_->ctx, ca_pem.c_str(), nullptr) != 1) {
    context_error("load_verify_file " + ca_pem);
  }
}

void TlsContext::load_cert_chain(const std::string& cert_chain_pem, const std::string& key_pem) {
  if (SSL_CTX_use_certificate_chain_file(state_->ctx, cert_chain_pem.c_str()) != 1) {
    context_error("the certificate chain " + cert_chain_pem);
  }
  if (SSL_CTX_use_PrivateKey_file(state_->ctx, key_pem.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      context_error("the private key " + key_pem + " does not match " + cert_chain_pem);
    }
    context_error("the private key " + key_pem);
  }
  if (SSL_CTX_check_private_key(state_->ctx) != 1) {
    context_error("the private key " + key_pem + " does not match " + cert_chain_pem);
  }
}

void TlsContext::set_verify_peer(bool verify) {
  int mode = SSL_VERIFY_NONE;
  if (verify)
    mode = state_->server ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER;
  SSL_CTX_set_verify(state_->ctx, mode, nullptr);
}

void TlsContext::set_alpn(std::vector<std::string> protocols) {
  std::vector<unsigned char> wire;
  for (std::size_t i = 0; i < protocols.size(); ++i) {
    const std::string& p = protocols[i];
    if (p.empty() || p.size() > 255) {
      throw std::invalid_argument("TlsContext::set_alpn: protocol " + std::to_string(i) + " (of " +
                                  std::to_string(protocols.size()) + ") is " +
                                  std::to_string(p.size()) + " bytes; a name is 1 to 255 bytes");
    }
    wire.push_back(static_cast<unsigned char>(p.size()));
    wire.insert(wire.end(), p.begin(), p.end());
  }
  state_->alpn = std::move(wire);
  if (state_->server) {
    SSL_CTX_set_alpn_select_cb(state_->ctx, select_alpn, state_.get());
  } else if (SSL_CTX_set_alpn_protos(state_->ctx, state_->alpn.data(),
                                     static_cast<unsigned>(state_->alpn.size())) != 0) {
    context_error("set_alpn");
  }
}

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
      write_broken_(other.write_broken_),
      close_notify_sent_(other.close_notify_sent_) {}

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
    write_broken_ = other.write_broken_;
    close_notify_sent_ = other.close_notify_sent_;
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
    if (drive("handshake", [this] { return SSL_do_handshake(ssl_); }) == 0) {
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

template <class Call>
int TlsStream::drive(const char* op, Call call, bool breaks_writes) {
  if (ssl_ == nullptr || !tcp_.is_open()) {
    throw std::system_error(EBADF, std::generic_category(),
                            std::string("TLS ") + op + " with " + peer_ +
                                ": the stream is closed (or empty: moved from)");
  }
  // One thread's fibers at a time (a loop's, or a thread's without a
  // loop): OpenSSL's connection state is one thread's, and a fiber parked
  // in an operation is still in the middle of it.
  const internal::TlsClaim claim(claims_, op, peer_);
  try {
    for (;;) {
      ERR_clear_error();
      errno = 0;  // so that an SSL_ERROR_SYSCALL without a failed call shows none
      const int r = call();
      if (r > 0) return r;
      const int saved_errno = errno;
      const int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (e == SSL_ERROR_WANT_READ) {
          tcp_.wait_readable();
        } else {
          tcp_.wait_writable();
        }
        // Let go of while it waited (the stream moved from, or destroyed
        // with its socket gone elsewhere): no more SSL calls on it.
        if (!claim.holds()) internal::throw_let_go((std::string("TLS ") + op).c_str());
      } else if (e == SSL_ERROR_ZERO_RETURN) {
        return 0;
      } else {
        fail(op, e, saved_errno);
      }
    }
  } catch (const Cancelled&) {
    // Interrupted while OpenSSL may hold part of a record made from the
    // caller's bytes: a later write with other bytes would send the rest of
    // this one in their place. (An error of the connection itself OpenSSL
    // reports again.) Not if the stream let go of this operation meanwhile.
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
  return static_cast<std::size_t>(
      drive("read", [&] { return SSL_read(ssl_, buf.data(), length); }));
}

std::size_t TlsStream::write_some(std::span<const char> buf) {
  if (buf.empty()) return 0;
  if (write_broken_) {
    throw TlsError("TLS write with " + peer_ +
                   ": an earlier write was interrupted (cancelled or timed out) in the middle of "
                   "a record, so the stream can no longer be written (as in Go); close it");
  }
  const int length = static_cast<int>(std::min<std::size_t>(buf.size(), INT_MAX));
  const int n = drive(
      "write", [&] { return SSL_write(ssl_, buf.data(), length); }, /*breaks_writes=*/true);
  if (n == 0) {  // the peer's close_notify came while we wrote
    throw std::system_error(EPIPE, std::generic_category(), "TLS write with " + peer_);
  }
  return static_cast<std::size_t>(n);
}

void TlsStream::shutdown_write() {
  // Our own record of it: OpenSSL marks close_notify sent when it queues
  // it, so after an interrupted call its flag says sent while the alert
  // waits in OpenSSL's buffer, and only another SSL_shutdown flushes it.
  if (close_notify_sent_) return;
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
        s.drive("shutdown", [&s] {
          const int r = SSL_shutdown(s.ssl_);
          if (r >= 0) s.close_notify_sent_ = true;
          return r >= 0 ? 1 : r;
        });
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
