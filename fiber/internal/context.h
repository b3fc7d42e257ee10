// The machine-level switch between execution contexts, over Boost.Context's
// fcontext. The switch is inline, so that it compiles into the scheduler's
// own frames: each extra function return above a switch costs a
// return-stack misprediction (measured: 12.5 ns per switch through an
// out-of-line wrapper, 5.8 ns inline, the same as raw jump_fcontext).
// So this header declares jump_fcontext's ABI itself; context.cc, the one
// file that includes Boost.Context, checks that declaration against Boost's.
#pragma once

#include <cstddef>

namespace fiberloop::internal {

// A suspended execution context: the saved stack pointer.
using ContextHandle = void*;

// What a fresh context runs first. Objects started on a context begin with
// this base so that the trampoline can find their entry function.
struct ContextEntry {
  void (*start)(ContextEntry* self) = nullptr;
};

// Passed by the switching context to the resumed one: where to store the
// switcher's saved context (null if it never resumes), and the entry of a
// fresh context.
struct Handoff {
  ContextHandle* save;
  ContextEntry* entry;
};

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

// Saves the running context into *save and resumes `to`, passing `entry` (read
// only when `to` is fresh). Returns when another context switches to *save.
inline void switch_context(ContextHandle* save, ContextHandle to, ContextEntry* entry) noexcept {
  Handoff handoff{save, entry};
  const Transfer t = fiberloop_jump_fcontext(to, &handoff);
  // Resumed: record where the switcher stopped, unless it exited for good.
  auto* from = static_cast<Handoff*>(t.data);
  if (from->save != nullptr) *from->save = t.from;
}

// Leaves the running context for good and resumes `to` (passing `entry`, as
// switch_context does). Whatever owns the running stack must not unmap it
// before this call; returning it to a pool is fine, as nothing reuses it
// until the switch is done.
[[noreturn]] inline void exit_context(ContextHandle to, ContextEntry* entry) noexcept {
  switch_context(nullptr, to, entry);
  __builtin_unreachable();
}

}  // namespace fiberloop::internal
