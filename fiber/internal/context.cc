// The one file that includes Boost.Context. We use the fcontext layer
// (jump_fcontext/ontop_fcontext) directly: bench/switch_bench measures it
// against boost::context::fiber, and it is the faster of the two.
#include "fiber/internal/context.h"

#include <boost/context/detail/fcontext.hpp>

namespace fiberloop::internal {
namespace bctx = boost::context::detail;

namespace {

// Passed from the context that switches to the one that resumes: where to
// store the switcher's saved context, and the entry of a fresh context.
struct Handoff {
  ContextHandle* save;
  ContextEntry* entry;
};

struct Cleanup {
  void (*fn)(void*);
  void* arg;
  ContextEntry* entry;
};

// The handoff of a context that exited for good: nothing to save, but a
// fresh target still needs its entry. Read at once by the resumed side.
thread_local Handoff tls_exit_handoff{nullptr, nullptr};

// The handoff of the latest switch, for a fresh context's trampoline. A
// fresh context cannot take it from its argument: when it is entered through
// ontop_fcontext (exit_context), the argument registers hold no transfer.
thread_local Handoff* tls_handoff = nullptr;

// Runs in the resumed context: records where the switcher stopped (unless
// it exited for good: see exit_context).
inline void store_switcher(const bctx::transfer_t& t) noexcept {
  auto* handoff = static_cast<Handoff*>(t.data);
  if (handoff->save != nullptr) *handoff->save = t.fctx;
}

void trampoline(bctx::transfer_t t) noexcept {
  Handoff* handoff = tls_handoff;
  if (handoff->save != nullptr) *handoff->save = t.fctx;
  handoff->entry->start(handoff->entry);
  __builtin_unreachable();  // start() leaves through exit_context()
}

bctx::transfer_t run_cleanup(bctx::transfer_t t) noexcept {
  Cleanup c = *static_cast<Cleanup*>(t.data);  // copy: it lives on the dying stack
  c.fn(c.arg);
  tls_exit_handoff = Handoff{nullptr, c.entry};
  tls_handoff = &tls_exit_handoff;
  return {t.fctx, &tls_exit_handoff};
}

}  // namespace

ContextHandle make_context(void* stack_top, std::size_t size) noexcept {
  return bctx::make_fcontext(stack_top, size, &trampoline);
}

void switch_context(ContextHandle* save, ContextHandle to, ContextEntry* entry) noexcept {
  Handoff handoff{save, entry};
  tls_handoff = &handoff;
  store_switcher(bctx::jump_fcontext(to, &handoff));
}

void exit_context(ContextHandle to, ContextEntry* entry, void (*cleanup)(void*),
                  void* arg) noexcept {
  Cleanup c{cleanup, arg, entry};
  bctx::ontop_fcontext(to, &c, &run_cleanup);
  __builtin_unreachable();
}

}  // namespace fiberloop::internal
