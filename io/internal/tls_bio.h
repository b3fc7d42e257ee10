// OpenSSL's side of TlsStream (io/tls_bio.cc): the BIO through which
// OpenSSL reaches the socket, with fiberloop's own non-blocking calls (send
// with MSG_NOSIGNAL: a closed peer is EPIPE, never SIGPIPE). A read that
// finds nothing is "retry", so that OpenSSL returns WANT_READ and the fiber
// parks; a write is taken whole, and what the socket does not take yet is
// kept for TlsStream to send; and OpenSSL's error queue as text. OpenSSL's types are only
// declared here, so the header compiles without OpenSSL's.
#pragma once

#include <cstddef>
#include <string>

struct bio_st;         // OpenSSL's BIO
struct bio_method_st;  // OpenSSL's BIO_METHOD

namespace fiberloop::internal {

// OpenSSL's reasons for the last failure, oldest first, and its queue
// emptied: "certificate verify failed".
std::string openssl_reasons();

class IoHandle;

// The socket BIO's method (one for the process). A BIO made with it reads
// and writes the socket set_bio_socket() gives it (through its
// IoHandle::with_fd), and remembers the TCP end of stream for BIO_CTRL_EOF.
bio_method_st* socket_bio();
void set_bio_socket(bio_st* bio, IoHandle* socket);

// How many bytes OpenSSL wrote through `bio` wait for the socket to take them.
std::size_t bio_unsent_bytes(bio_st* bio);
// Sends what the socket takes of them now, without waiting. Returns 0 once
// none is left, EAGAIN if the socket is full, or the send's errno.
int bio_send_unsent(bio_st* bio);

}  // namespace fiberloop::internal
