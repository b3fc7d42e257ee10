// TLS on OpenSSL 3: TlsContext holds a configuration, TlsStream is one
// encrypted connection over a TcpStream.
//
//   auto ctx = fiberloop::TlsContext::client();          // system CAs, host name checked
//   auto s = fiberloop::TlsStream::connect("example.com", 443, ctx);
//   s.write_all("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
//
//   auto server = fiberloop::TlsContext::server("cert.pem", "key.pem");
//   auto conn = fiberloop::TlsStream::accept(listener.accept(), server);
//
// The handshake and every read and write park the fiber whenever OpenSSL
// wants the socket readable or writable, so they honour cancellation,
// with_timeout() and the stream's deadlines (a TcpStream's deadlines set
// before the handshake bound it, and carry over). A client verifies the
// peer's chain and host name unless told not to. The bytes go through
// fiberloop's own socket calls (MSG_NOSIGNAL: a closed peer is EPIPE, never
// SIGPIPE).
//
// One loop's fibers use a TlsStream at a time, one reader and one writer
// among them: OpenSSL's connection state belongs to one thread. An
// operation from another loop (or thread) while one is in progress, parked
// or not, throws std::logic_error; between operations the stream may move
// to another loop, as a TcpStream does.
#pragma once

#ifdef FIBERLOOP_NO_TLS
#error \
    "io/tls.h: this fiberloop was built without OpenSSL; install Debian's libssl-dev and build fiberloop again"
#endif

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "io/stream.h"
#include "io/tcp.h"

struct ssl_st;      // OpenSSL's SSL
struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace fiberloop {
namespace internal {
class Scheduler;
class TlsClaim;  // io/internal/tls_claim.h

// Which thread's fibers are in a TlsStream's operations now (one thread at
// a time), that thread's loop, and their claims.
struct TlsClaims {
  // The thread's identity; a marker while a thread names its loop.
  std::atomic<const void*> thread{nullptr};
  std::atomic<Scheduler*> loop{nullptr};  // null: a thread without a loop
  std::atomic<std::uint64_t> serial{0};
  // The claims of its operations under way; only that thread touches them.
  TlsClaim* list = nullptr;
  int count = 0;
};
}  // namespace internal

// A TLS failure: the handshake (a bad certificate, a peer that is not
// speaking TLS, no common protocol) or a broken record. what() names the
// peer and OpenSSL's reason ("TLS handshake with 127.0.0.1:4433 (localhost):
// certificate verify failed: certificate has expired").
class TlsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A TLS configuration, shared by the streams made with it (copies share
// it too). Configure it before the first stream is made with it: OpenSSL
// copies some settings into each connection as it is made, and takes no
// lock for a change, so a change while a stream is being made on another
// loop is a data race, and one made later may reach only later streams.
class TlsContext {
 public:
  // A client's: TLS 1.2 or 1.3; verifies the peer's chain against the
  // system's CAs (/etc/ssl/certs) and its host name.
  // Throws: TlsError if OpenSSL cannot make the context.
  static TlsContext client();
  // A server's, with its certificate chain and private key (PEM file
  // paths); does not ask clients for certificates unless set_verify_peer.
  // Throws: TlsError naming the file and the reason (a missing file, a key
  //         that does not match the certificate).
  static TlsContext server(const std::string& cert_chain_pem, const std::string& key_pem);

  // Trust the CAs in this PEM file (a private CA; for a server, the CAs of
  // the client certificates it accepts). Throws: TlsError naming the file.
  void load_verify_file(const std::string& ca_pem);
  // Present this certificate chain and key (PEM file paths): a client's
  // certificate, or a server's. Throws: TlsError naming the file.
  void load_cert_chain(const std::string& cert_chain_pem, const std::string& key_pem);
  // A client: whether to verify the server (default true; false only for
  // tests against self-signed servers). A server: whether to require a
  // client certificate, verified against load_verify_file's CAs.
  void set_verify_peer(bool verify);
  // ALPN protocols, in order of preference ("h2", "http/1.1"). A server
  // picks the first of its own that the client offers.
  // Throws: std::invalid_argument for an empty or over-long name.
  void set_alpn(std::vector<std::string> protocols);

  struct State;  // opaque: the SSL_CTX and what it refers to (io/tls.cc)

 private:
  friend class TlsStream;
  explicit TlsContext(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

class TlsStream final : public Stream {
 public:
  TlsStream() = default;
  TlsStream(TlsStream&&) noexcept;
  TlsStream& operator=(TlsStream&&) noexcept;
  ~TlsStream() override;

  // Connects to host:port (TcpStream::connect), then the client handshake
  // with SNI and host name verification for `host`.
  // Throws: std::system_error from connecting; TlsError (also when the peer
  //         closes the connection mid-handshake); Cancelled; TimeoutError.
  static TlsStream connect(std::string_view host, std::uint16_t port, const TlsContext& context);
  // The client handshake on a connection; `host` is sent as SNI and, if the
  // context verifies, must match the certificate (a name or an IP address).
  // Throws: TlsError naming the connection (a failed handshake or
  //         verification, or the peer closing mid-handshake);
  //         std::system_error from the socket; Cancelled; TimeoutError;
  //         std::invalid_argument for an empty `host` when the context
  //         verifies (nothing to check the certificate against). The
  //         connection is closed on any of them.
  static TlsStream client(TcpStream connection, const TlsContext& context, std::string_view host);
  // The server handshake on an accepted connection. Throws: as client().
  static TlsStream accept(TcpStream connection, const TlsContext& context);

  // The protocol ALPN agreed on; "" if none.
  std::string alpn_protocol() const;
  // OpenSSL's name for it: "TLSv1.3" or "TLSv1.2".
  std::string protocol_version() const;

  // Sends close_notify: the peer reads end of stream. Reading still works.
  // A write: under the write deadline, and refused while another fiber
  // writes. A second call does nothing once one has finished; after one
  // that was interrupted (cancelled, timed out) it finishes sending.
  // Throws: TlsError after a write interrupted mid-record (the stream is
  //         broken); std::logic_error while another fiber writes;
  //         std::system_error from the socket; Cancelled; TimeoutError.
  void shutdown_write() override;
  // Closes the connection (without close_notify; call shutdown_write()
  // first for an orderly end). Idempotent.
  void close() noexcept override;
  bool is_open() const noexcept override { return tcp_.is_open(); }
  // "TLS fd 7 with 127.0.0.1:4433 (localhost)".
  std::string describe() const override;
  // The TCP connection underneath (its addresses, its fd).
  const TcpStream& tcp() const noexcept { return tcp_; }

 protected:
  // A peer's TCP end without close_notify reads as end of stream, as in
  // Python's ssl module (suppress_ragged_eofs). A write takes at most one
  // record (16 KiB) of `buf`. A write interrupted by a cancel or a deadline
  // after it took its bytes, while the socket had not taken them all,
  // leaves how many will arrive unknown: every later write then throws
  // TlsError (Go's rule); reads go on. A read may write (the answer to a
  // peer's TLS 1.3 KeyUpdate) while a writer waits for the socket.
  std::size_t read_some(std::span<char> buf) override;
  std::size_t write_some(std::span<const char> buf) override;

 private:
  TlsStream(TcpStream tcp, const TlsContext& context, std::string peer_name);
  void handshake();
  // What an operation does with the bytes OpenSSL wrote that the socket
  // has not taken (the BIO keeps them, in order): kSendAll parks until the
  // socket took them all (a handshake step before it waits for the peer, a
  // write or shutdown before it returns); kWhenAble sends what the socket
  // takes now (a read, which must not wait on the writer's direction).
  enum class Output { kSendAll, kWhenAble };
  // Throws system_error(EBADF) naming `op` if the stream is closed or empty.
  void check_open(const char* op) const;
  // Runs an SSL call until it makes progress, parking while OpenSSL wants
  // the socket; returns its result (> 0), or 0 at a clean end.
  // With `breaks_writes`, an interrupt (cancel, timeout) after the first
  // call marks the stream unwritable (write_broken_).
  template <class Call>
  int drive(const char* op, Call call, Output output, bool breaks_writes = false);
  // Sends what the BIO kept, as `output` says (wait: kSendAll), under
  // `claim`. Throws the send's error (when waiting), and a let-go stream's.
  void send_unsent(const internal::TlsClaim& claim, const char* op, bool wait);
  // Parks until the socket is readable (else writable), under `claim`. A
  // close meanwhile throws system_error(EBADF) naming `op` and the peer; a
  // stream that let go of the operation throws without touching it.
  void wait_socket(const internal::TlsClaim& claim, const char* op, bool readable);
  // Throws what `ssl_error` (SSL_get_error's) means; `sys_errno` is errno
  // as the failed call left it (0 if it set none).
  [[noreturn]] void fail(const char* op, int ssl_error, int sys_errno);

  TcpStream tcp_;
  ssl_st* ssl_ = nullptr;
  std::shared_ptr<TlsContext::State> context_;
  std::string peer_;           // "127.0.0.1:4433 (localhost)" for messages
  bool write_broken_ = false;  // a write was interrupted mid-record
  bool close_notify_sent_ = false;
  // The thread whose fibers are in operations now (io/tls_claim.cc).
  internal::TlsClaims claims_;
};

}  // namespace fiberloop
