// TlsContext: the SSL_CTX a stream's handshake uses, its certificates,
// verification and ALPN, with errors that name the file or setting.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "io/internal/tls_bio.h"  // openssl_reasons
#include "io/internal/tls_context_state.h"
#include "io/tls.h"

namespace fiberloop {
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

}  // namespace fiberloop
