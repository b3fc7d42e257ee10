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

// Whether `holder`, another thread, holds the claims for a loop that is
// gone (its fibers abandoned, never resuming); if so, takes them from it.
bool take_abandoned(TlsClaims& claims, const void* holder) noexcept {
  if (holder == claiming()) return false;
  const Scheduler* loop = claims.loop.load(std::memory_order_acquire);
  const std::uint64_t serial = claims.serial.load(std::memory_order_relaxed);
  if (loop == nullptr || scheduler_is_live(loop, serial)) return false;
  return claims.thread.compare_exchange_strong(holder, claiming(), std::memory_order_acq_rel);
}

}  // namespace

TlsClaim::TlsClaim(TlsClaims& claims, const char* op, const std::string& peer) : claims_(&claims) {
  const void* me = this_thread();
  const void* holder = nullptr;
  if (!claims.thread.compare_exchange_strong(holder, claiming(), std::memory_order_acq_rel) &&
      holder != me && !take_abandoned(claims, holder)) {
    throw std::logic_error(
        std::string("TLS ") + op + " with " + peer +
        ": fibers of another loop (or thread) are using this stream; a TlsStream is used by "
        "one loop at a time (OpenSSL's connection state is one thread's), so hand it over "
        "when that loop's operations have ended");
  }
  Scheduler* here = Scheduler::current();
  const std::uint64_t serial = here != nullptr ? here->serial() : 0;
  if (holder != me) {  // the first (or taking over): names its loop, then itself
    claims.list = nullptr;
    claims.count = 0;
    claims.loop.store(here, std::memory_order_relaxed);
    claims.serial.store(serial, std::memory_order_relaxed);
    claims.thread.store(me, std::memory_order_release);
  } else if (claims.loop.load(std::memory_order_relaxed) != here ||
             claims.serial.load(std::memory_order_relaxed) != serial) [[unlikely]] {
    // This thread's earlier loop is gone with claims of fibers it abandoned
    // (they never resume): they are forgotten, and this loop holds it.
    claims.list = nullptr;
    claims.count = 0;
    claims.loop.store(here, std::memory_order_relaxed);
    claims.serial.store(serial, std::memory_order_relaxed);
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
    // abandoned and never resume, and the stream is free (its thread may
    // run a new loop, whose first claim finds it so).
    if (!asked && claims.loop.load(std::memory_order_relaxed) == loop &&
        claims.serial.load(std::memory_order_relaxed) == serial) {
      claims.list = nullptr;
      claims.count = 0;
      const void* abandoned = holder;
      if (claims.thread.compare_exchange_strong(abandoned, nullptr, std::memory_order_acq_rel)) {
        return;
      }
    }
  }
}

}  // namespace fiberloop::internal
