#include "io/internal/tls_claim.h"

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

#include "loop/internal/scheduler.h"
#include "loop/internal/waiter.h"

namespace fiberloop::internal {
namespace {

// The calling thread's identity (a loop's thread, or one without a loop).
const void* this_thread() noexcept {
  static thread_local const char here = 0;
  return &here;
}

// What `thread` holds while a thread claims the stream and names its loop.
const void* claiming() noexcept {
  static const char marker = 0;
  return &marker;
}

// Whether the claims are held for a loop that is gone: by fibers its
// shutdown abandoned in the middle of an operation (never to end it).
bool held_by_abandoned(const TlsClaims& claims) noexcept {
  const Scheduler* loop = claims.loop.load(std::memory_order_acquire);
  const std::uint64_t serial = claims.serial.load(std::memory_order_relaxed);
  return loop != nullptr && !scheduler_is_live(loop, serial);
}

}  // namespace

TlsClaim::TlsClaim(TlsClaims& claims, const char* op, const std::string& peer) : claims_(&claims) {
  const void* me = this_thread();
  Scheduler* here = Scheduler::current();
  const std::uint64_t serial = here != nullptr ? here->serial() : 0;
  const void* holder = nullptr;
  const bool first =
      claims.thread.compare_exchange_strong(holder, claiming(), std::memory_order_acq_rel);
  // Refused: another thread's fibers hold it, or fibers of a loop that is
  // gone (this thread's earlier one, or another's) abandoned it in the
  // middle of an operation. Not taken over from those: OpenSSL may be in
  // the middle of a record for them, and on io_uring their kernel
  // operations may still be under way until their loop's ring goes.
  if (!first && (holder != me || claims.loop.load(std::memory_order_relaxed) != here ||
                 claims.serial.load(std::memory_order_relaxed) != serial)) {
    throw std::logic_error(
        std::string("TLS ") + op + " with " + peer +
        (held_by_abandoned(claims)
             ? ": the fibers that were using this stream were abandoned by their loop's "
               "shutdown in the middle of an operation, which never ends; destroy the stream, "
               "or assign another over it"
             : ": fibers of another loop (or thread) are using this stream; a TlsStream is used "
               "by one loop at a time (OpenSSL's connection state is one thread's), so hand it "
               "over when that loop's operations have ended"));
  }
  if (first) {  // names its loop, then itself
    claims.loop.store(here, std::memory_order_relaxed);
    claims.serial.store(serial, std::memory_order_relaxed);
    claims.thread.store(me, std::memory_order_release);
  }
  ++claims.count;
  next_ = claims.list;
  if (next_ != nullptr) next_->prev_ = this;
  claims.list = this;
}

TlsClaim::~TlsClaim() {
  if (claims_ == nullptr) return;  // the stream let go of this operation
  (prev_ != nullptr ? prev_->next_ : claims_->list) = next_;
  if (next_ != nullptr) next_->prev_ = prev_;
  if (--claims_->count == 0) claims_->thread.store(nullptr, std::memory_order_release);
}

void TlsClaim::forget_all(TlsClaims& claims) noexcept {
  for (TlsClaim* c = claims.list; c != nullptr;) {
    TlsClaim* next = c->next_;
    c->claims_ = nullptr;
    c->prev_ = c->next_ = nullptr;
    c = next;
  }
  claims.list = nullptr;
  claims.count = 0;
  claims.thread.store(nullptr, std::memory_order_release);
}

void let_go_of_claims(TlsClaims& claims) noexcept {
  struct Ask {
    TlsClaims* claims;
    bool done;
  };
  for (;;) {
    const void* holder = claims.thread.load(std::memory_order_acquire);
    if (holder == nullptr) return;
    if (holder == claiming()) {
      std::this_thread::yield();  // a thread names its loop: two stores
      continue;
    }
    if (holder == this_thread()) {
      TlsClaim::forget_all(claims);
      return;
    }
    Scheduler* const loop = claims.loop.load(std::memory_order_relaxed);
    const std::uint64_t serial = claims.serial.load(std::memory_order_relaxed);
    // A plain thread's operations never park: they end by themselves.
    if (loop == nullptr) {
      std::this_thread::yield();
      continue;
    }
    Ask ask{&claims, false};
    const bool asked = call_on_loop_if_live(
        loop, serial,
        [](void* arg) noexcept {
          auto& a = *static_cast<Ask*>(arg);
          const void* now = a.claims->thread.load(std::memory_order_acquire);
          if (now != this_thread()) return;  // given back meanwhile, or another's now
          TlsClaim::forget_all(*a.claims);
          a.done = true;
        },
        &ask);
    if (ask.done) return;
    // That loop is gone with the claims still its own: its fibers were
    // abandoned and never resume. The stream lets go of them: it takes the
    // claims (against another letting go), forgets them, and is free.
    if (!asked && claims.loop.load(std::memory_order_relaxed) == loop &&
        claims.serial.load(std::memory_order_relaxed) == serial) {
      const void* abandoned = holder;
      if (claims.thread.compare_exchange_strong(abandoned, claiming(), std::memory_order_acq_rel)) {
        claims.list = nullptr;
        claims.count = 0;
        claims.thread.store(nullptr, std::memory_order_release);
        return;
      }
    }
  }
}

}  // namespace fiberloop::internal
