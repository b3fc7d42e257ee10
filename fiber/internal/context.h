// The machine-level switch between execution contexts, over Boost.Context's
// fcontext, and the stack a context runs on. The switch is inline, so that it compiles into the
// scheduler's own frames: each extra function return above a switch costs a return-stack
// misprediction (measured: 12.5 ns per switch through an out-of-line wrapper, 5.8 ns inline, the
// same as raw jump_fcontext). So this header declares jump_fcontext's ABI itself; context.cc, the
// one file that includes Boost.Context, checks that declaration against Boost's.
#pragma once

#include <cstddef>
#include <cstdint>

#include "fiber/internal/sanitizers.h"

namespace fiberloop::internal {

// A suspended execution context: the saved stack pointer.
using ContextHandle = void*;

// The memory a context runs on: usable [top - size, top), with a guard page
// right below when `guarded`. Handed out by a StackPool (stack_pool.h).
struct Stack {
  char* top = nullptr;
  std::size_t size = 0;
  std::uint32_t slab = 0;        // index into the pool's slabs
  std::uint16_t size_class = 0;  // index into the pool's size classes
  bool guarded = false;

  char* bottom() const noexcept { return top - size; }
  explicit operator bool() const noexcept { return top != nullptr; }
};

// What a fresh context runs first. Objects started on a context begin with
// this base so that the trampoline can find their entry function.
struct ContextEntry {
  void (*start)(ContextEntry* self) = nullptr;
};

// Passed by the switching context to the resumed one: where to store the
// switcher's saved context (null if it never resumes), the entry of a fresh
// context, and (ASan) the stack the resumed context runs on.
struct Handoff {
  ContextHandle* save;
  ContextEntry* entry;
#if FIBERLOOP_ASAN
  StackRange to_stack;  // only here in ASan builds: the handoff's address escapes to
                        // jump_fcontext, so every field is stored on every switch
#endif
};

// The C++ runtime's per-thread exception state, as libstdc++ and libc++abi
// both lay it out (__cxa_eh_globals): the exceptions being handled, innermost
// first, and the count of exceptions thrown and not yet caught. It belongs to
// whatever runs on the thread, so each context keeps its own copy (a fiber in
// its record, a generator body and its consumer in the generator, the
// scheduler in the loop) and every switch swaps them: the leaving context's
// goes to its copy, the resumed one's comes back. A fresh context starts
// with none. Without that, a fiber that suspends in a catch block or in a
// destructor run by unwinding hands its state to the next one: `throw;`
// rethrows another fiber's exception, one handler's end frees another's
// exception, std::uncaught_exceptions() counts another's unwinding.
// Packed to 12 bytes, so that a fiber's copy fits in the cache line of its
// record that every switch touches.
struct __attribute__((packed, aligned(4))) ExceptionState {
  void* caught = nullptr;
  unsigned int uncaught = 0;
};
static_assert(sizeof(ExceptionState) == 12);
extern "C" ExceptionState* fiberloop_cxa_get_globals() noexcept __asm__("__cxa_get_globals");
// This thread's ExceptionState: a plain %fs-relative load. make_context()
// sets it, and every switch on a thread follows a make_context() on that
// thread (contexts never move between threads).
extern thread_local constinit ExceptionState* tls_exception_state
    __attribute__((tls_model("initial-exec")));

// Saves the running context's exception state into `mine` and installs
// `theirs`, the state of the context about to run. Field by field: one wide
// copy of two narrow stores stalls store forwarding at the next switch.
inline void swap_exception_state(ExceptionState* mine, const ExceptionState& theirs) noexcept {
  ExceptionState* const live = tls_exception_state;
  if (mine != nullptr) {
    mine->caught = live->caught;
    mine->uncaught = live->uncaught;
  }
  live->caught = theirs.caught;
  live->uncaught = theirs.uncaught;
}

// What else follows a generator body between the fibers that resume it: the
// loop keeps its with_timeout() scopes (`body_state`) and counts the
// exceptions unwinding its consumer (`consumer_unwinding`), as interrupts
// wait while a fiber unwinds. The loop installs this hook; GeneratorCore
// calls it as the body is entered (`into_body`) and left.
using GeneratorSwitchHook = void (*)(void** body_state, unsigned consumer_unwinding,
                                     bool into_body);
void set_generator_switch_hook(GeneratorSwitchHook hook) noexcept;
GeneratorSwitchHook generator_switch_hook() noexcept;

// Boost.Context's transfer_t and jump_fcontext, by ABI (see context.cc).
struct Transfer {
  ContextHandle from;
  void* data;
};
extern "C" Transfer fiberloop_jump_fcontext(ContextHandle to, void* data) noexcept
    __asm__("jump_fcontext");

// Prepares a fresh context on the stack [stack_top - size, stack_top). The first
// switch_context() to it calls `entry->start(entry)`, where `entry` is the
// argument of that switch. A start function never returns; it ends with
// exit_context().
ContextHandle make_context(void* stack_top, std::size_t size) noexcept;

// Saves the running context into *save and its exception state into
// *exceptions, and resumes `to`, which runs on `to_stack` with the exception
// state `their_exceptions`, passing `entry` (read only when `to` is fresh).
// Returns when another context switches to *save.
[[gnu::always_inline]] inline void switch_context(ContextHandle* save, ExceptionState* exceptions,
                                                  ContextHandle to,
                                                  const ExceptionState& their_exceptions,
                                                  ContextEntry* entry,
                                                  [[maybe_unused]] StackRange to_stack) noexcept {
  swap_exception_state(exceptions, their_exceptions);
#if FIBERLOOP_ASAN
  Handoff handoff{save, entry, to_stack};
  // An exiting context's frames die at the switch (with
  // detect_stack_use_after_return, ASan frees its fake stack there), and the
  // resumed side reads the handoff after that: give that one thread storage.
  static thread_local Handoff exit_handoff;
  Handoff* passed = &handoff;
  if (save == nullptr) {
    exit_handoff = handoff;
    passed = &exit_handoff;
  }
#else
  Handoff handoff{save, entry};
  Handoff* passed = &handoff;
#endif
#if FIBERLOOP_ASAN
  const StackRange mine = current_stack();
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(save != nullptr ? &fake_stack : nullptr, to_stack.bottom,
                                 to_stack.size);
#elif FIBERLOOP_TSAN
  if (save == nullptr) tls_exited_tsan_fiber = __tsan_get_current_fiber();
  __tsan_switch_to_fiber(to_stack.tsan_fiber, 0);
#endif
  const Transfer t = fiberloop_jump_fcontext(to, passed);
#if FIBERLOOP_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
  tls_running_stack = mine;
#elif FIBERLOOP_TSAN
  reap_exited_context();
#endif
  // Resumed: record where the switcher stopped, unless it exited for good.
  auto* from = static_cast<Handoff*>(t.data);
  if (from->save != nullptr) *from->save = t.from;
}

// Leaves the running context for good and resumes `to` (passing `entry`, as
// switch_context does). Whatever owns the running stack must not unmap it
// before this call; returning it to a pool is fine, as nothing reuses it
// until the switch is done.
[[noreturn, gnu::always_inline]] inline void exit_context(ContextHandle to,
                                                          const ExceptionState& their_exceptions,
                                                          ContextEntry* entry,
                                                          StackRange to_stack) noexcept {
  switch_context(nullptr, nullptr, to, their_exceptions, entry, to_stack);
  __builtin_unreachable();
}

}  // namespace fiberloop::internal
