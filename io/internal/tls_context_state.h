// What a TlsContext holds (shared by the streams made with it): OpenSSL's
// SSL_CTX and our ALPN list. io/tls_context.cc makes it; io/tls.cc reads it.
#pragma once

#include <openssl/ssl.h>

#include <vector>

#include "io/tls.h"

namespace fiberloop {

struct TlsContext::State {
  ~State() { SSL_CTX_free(ctx); }
  SSL_CTX* ctx = nullptr;
  bool server = false;
  std::vector<unsigned char> alpn;  // ALPN wire format: length-prefixed names
};

}  // namespace fiberloop
