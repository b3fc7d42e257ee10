// The TLS tests' fixture: a Loop per test, certificates made once per
// suite (a CA, a server, an expired server, a client), and helpers.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "fiberloop.h"
#include "tests/loop_fixture.h"
#include "tests/tls_certs.h"

namespace fiberloop::testing {

class Tls : public LoopTest {
 protected:
  static void SetUpTestSuite() { certs_ = new TestCerts(); }
  static void TearDownTestSuite() { delete certs_; }
  static const TestCerts& certs() { return *certs_; }

  // A client context that trusts the test CA.
  static TlsContext trusting_client() {
    TlsContext c = TlsContext::client();
    c.load_verify_file(certs().cert("ca"));
    return c;
  }

  // The test server's context: its certificate for "localhost", signed by
  // the test CA.
  static TlsContext server_context() {
    return TlsContext::server(certs().cert("server"), certs().key("server"));
  }

  // {client, server}: a handshake over loopback between trusting_client()
  // and server_context() (the streams keep their contexts).
  static std::pair<TlsStream, TlsStream> connected();

  static inline TestCerts* certs_ = nullptr;
};

// {client, server}: a handshake over loopback with these contexts, the
// client verifying "localhost".
inline std::pair<TlsStream, TlsStream> tls_pair(TlsContext& client_ctx, TlsContext& server_ctx) {
  auto listener = TcpListener::bind(any_port());
  auto server = spawn([&] { return TlsStream::accept(listener.accept(), server_ctx); });
  TlsStream c = TlsStream::connect("localhost", listener.local_address().port(), client_ctx);
  return {std::move(c), server.join()};
}

inline std::pair<TlsStream, TlsStream> Tls::connected() {
  TlsContext client_ctx = trusting_client();
  TlsContext server_ctx = server_context();
  return tls_pair(client_ctx, server_ctx);
}

}  // namespace fiberloop::testing
