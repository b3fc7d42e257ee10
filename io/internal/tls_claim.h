// Which thread's fibers are in a TlsStream's operations (OpenSSL's
// connection state is one thread's), and how the stream lets go of them when
// it is destroyed or assigned to while they are parked (io/tls_claim.cc).
#pragma once

#include <string>

#include "io/tls.h"  // TlsClaims

namespace fiberloop::internal {

// One operation's claim, on its stack, for as long as it runs: the first
// claim of a thread takes the stream for that thread's fibers; others of
// the same thread join it; the last one out gives it back.
class TlsClaim {
 public:
  // Throws: std::logic_error naming `op` and the stream (`peer`) if another
  // thread's fibers hold the stream.
  TlsClaim(TlsClaims& claims, const char* op, const std::string& peer);
  // Gives the stream back if this was the thread's last claim, unless the
  // stream let go of it (then it may be gone).
  ~TlsClaim();
  TlsClaim(const TlsClaim&) = delete;
  TlsClaim& operator=(const TlsClaim&) = delete;

  // False once the stream has let go of this operation (let_go_of_claims):
  // the operation must not touch the stream again.
  bool holds() const noexcept { return claims_ != nullptr; }

 private:
  friend void let_go_of_claims(TlsClaims& claims) noexcept;
  // On the holding thread: every claim forgets the stream, which is free.
  static void forget_all(TlsClaims& claims) noexcept;
  TlsClaims* claims_;
  TlsClaim* prev_ = nullptr;
  TlsClaim* next_ = nullptr;
};

// The stream lets go of every operation under way (destroyed, or assigned
// to): their claims forget it, on the thread that holds it (asked of that
// thread's loop, whose fibers are then parked or not yet resumed; the
// caller waits for that one step), and it is free. If that loop is gone,
// its fibers were abandoned and never resume: their claims are dropped here.
void let_go_of_claims(TlsClaims& claims) noexcept;

}  // namespace fiberloop::internal
