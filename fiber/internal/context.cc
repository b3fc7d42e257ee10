// The one file that includes Boost.Context. We use the fcontext layer
// (jump_fcontext) rather than boost::context::fiber: bench/switch_bench
// measures both at ~5.7 ns per switch, but only fcontext lets the switch be
// inline in the scheduler (a plain function of a pointer), which is what
// made yield 2x faster; fiber::resume moves a fiber object per switch.
#include "fiber/internal/context.h"

#include <pthread.h>

#include <atomic>

#include <boost/context/detail/fcontext.hpp>
#include <type_traits>

#if FIBERLOOP_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace fiberloop::internal {
namespace bctx = boost::context::detail;

// context.h declares jump_fcontext by ABI; hold it to Boost's declaration.
static_assert(std::is_same_v<bctx::fcontext_t, ContextHandle>);
static_assert(
    std::is_same_v<decltype(&bctx::jump_fcontext), bctx::transfer_t (*)(bctx::fcontext_t, void*)>);
static_assert(sizeof(Transfer) == sizeof(bctx::transfer_t) &&
              offsetof(Transfer, from) == offsetof(bctx::transfer_t, fctx) &&
              offsetof(Transfer, data) == offsetof(bctx::transfer_t, data));

namespace {

void trampoline(bctx::transfer_t t) noexcept {
  auto* handoff = static_cast<Handoff*>(t.data);
#if FIBERLOOP_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
  tls_running_stack = handoff->to_stack;
#elif FIBERLOOP_TSAN
  reap_exited_context();
#endif
  ContextEntry* entry = handoff->entry;
  if (handoff->save != nullptr) *handoff->save = t.fctx;
  entry->start(entry);
  __builtin_unreachable();  // start() leaves through exit_context()
}

}  // namespace

thread_local constinit ExceptionState* tls_exception_state
    __attribute__((tls_model("initial-exec"))) = nullptr;

#if FIBERLOOP_TSAN
thread_local void* tls_exited_tsan_fiber = nullptr;
#endif

#if FIBERLOOP_ASAN
thread_local StackRange tls_running_stack;

StackRange thread_stack() noexcept {
  pthread_attr_t attr;
  StackRange r;
  if (::pthread_getattr_np(::pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    std::size_t size = 0;
    ::pthread_attr_getstack(&attr, &addr, &size);
    ::pthread_attr_destroy(&attr);
    r = {addr, size};
  }
  return r;
}

void prepare_stack_for_reuse(void* bottom, std::size_t size) noexcept {
  __asan_unpoison_memory_region(bottom, size);
}
#endif

namespace {
std::atomic<GeneratorSwitchHook> switch_hook{nullptr};
}  // namespace

void set_generator_switch_hook(GeneratorSwitchHook hook) noexcept {
  switch_hook.store(hook, std::memory_order_relaxed);
}

GeneratorSwitchHook generator_switch_hook() noexcept {
  return switch_hook.load(std::memory_order_relaxed);
}

ContextHandle make_context(void* stack_top, std::size_t size) noexcept {
  if (tls_exception_state == nullptr) tls_exception_state = fiberloop_cxa_get_globals();
  return bctx::make_fcontext(stack_top, size, &trampoline);
}

}  // namespace fiberloop::internal
