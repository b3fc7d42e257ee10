// The machine-level switch between execution contexts, over Boost.Context's
// fcontext. This header hides Boost; context.cc is the one file including it.
#pragma once

#include <cstddef>

namespace fiberloop::internal {

// A suspended execution context: the saved stack pointer. Null when running.
using ContextHandle = void*;

// What a fresh context runs first. Objects started on a context begin with
// this member so that the trampoline can find their entry function.
struct ContextEntry {
  void (*start)(ContextEntry* self) = nullptr;
};

// Prepares a fresh context on the stack [stack_top - size, stack_top). The first
// switch_context() to it calls `entry->start(entry)`, where `entry` is the
// `arg` of that switch. A start function never returns; it ends with
// exit_context().
ContextHandle make_context(void* stack_top, std::size_t size) noexcept;

// Saves the running context into *save and resumes `to`, passing `entry` (read
// only when `to` is fresh). Returns when another context switches to *save.
void switch_context(ContextHandle* save, ContextHandle to, ContextEntry* entry) noexcept;

// Leaves the running context for good: resumes `to` (passing `entry`, as
// switch_context does) and, on `to`'s stack before `to` continues, calls
// cleanup(arg), the place to free the stack just left.
[[noreturn]] void exit_context(ContextHandle to, ContextEntry* entry, void (*cleanup)(void*),
                               void* arg) noexcept;

}  // namespace fiberloop::internal
