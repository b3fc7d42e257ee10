// What the sanitizers need told about switches between contexts. AddressSanitizer
// must know which stack runs (__sanitizer_start/finish_switch_fiber), and
// ThreadSanitizer which of its fibers (__tsan_switch_to_fiber). In other
// builds every type here is empty and every function a no-op.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

// gcc defines __SANITIZE_ADDRESS__ / __SANITIZE_THREAD__; clang has
// __has_feature.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FIBERLOOP_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define FIBERLOOP_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(FIBERLOOP_ASAN)
#define FIBERLOOP_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(FIBERLOOP_TSAN)
#define FIBERLOOP_TSAN 1
#endif
// 0 otherwise, defined: a program compiled with -Wundef includes this.
#ifndef FIBERLOOP_ASAN
#define FIBERLOOP_ASAN 0
#endif
#ifndef FIBERLOOP_TSAN
#define FIBERLOOP_TSAN 0
#endif
#if FIBERLOOP_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if FIBERLOOP_TSAN
#include <sanitizer/tsan_interface.h>
#endif
// Builds whose sanitizer must be told about every switch.
#if FIBERLOOP_ASAN || FIBERLOOP_TSAN
#define FIBERLOOP_SANITIZE_SWITCH 1
#else
#define FIBERLOOP_SANITIZE_SWITCH 0
#endif

// The library and the program must agree on this: the switch path inline in
// the program's code calls the library's sanitizer hooks. An installed
// fiberloop says what it was built with (the CMake package and fiberloop.pc
// define FIBERLOOP_LIBRARY_SANITIZE: 0 none, 1 address, 2 thread), so a
// mismatch stops here rather than at a link error about internal symbols.
#if FIBERLOOP_ASAN
#define FIBERLOOP_SANITIZER_KIND 1
#elif FIBERLOOP_TSAN
#define FIBERLOOP_SANITIZER_KIND 2
#else
#define FIBERLOOP_SANITIZER_KIND 0
#endif
#if defined(FIBERLOOP_LIBRARY_SANITIZE) && FIBERLOOP_LIBRARY_SANITIZE != FIBERLOOP_SANITIZER_KIND
#if FIBERLOOP_LIBRARY_SANITIZE == 1
#error \
    "this fiberloop was built with AddressSanitizer and UBSan (FIBERLOOP_SANITIZE=address): compile the program with -fsanitize=address too (and link it with -fsanitize=address,undefined, which the CMake targets and fiberloop.pc add), or use a fiberloop built without it"
#elif FIBERLOOP_LIBRARY_SANITIZE == 2
#error \
    "this fiberloop was built with ThreadSanitizer (FIBERLOOP_SANITIZE=thread): compile the program with -fsanitize=thread too, or use a fiberloop built without it"
#elif FIBERLOOP_SANITIZER_KIND == 1
#error \
    "the program is compiled with -fsanitize=address, and this fiberloop without it: build fiberloop with cmake -DFIBERLOOP_SANITIZE=address for such a program"
#else
#error \
    "the program is compiled with -fsanitize=thread, and this fiberloop without it: build fiberloop with cmake -DFIBERLOOP_SANITIZE=thread for such a program"
#endif
#endif

namespace fiberloop::internal {

// What the sanitizers know a context by: the memory it runs on (ASan) and
// its ThreadSanitizer fiber (TSan). Ignored in other builds.
struct StackRange {
  const void* bottom = nullptr;
  std::size_t size = 0;
#if FIBERLOOP_TSAN
  void* tsan_fiber = nullptr;
#endif
};

#if FIBERLOOP_ASAN
// The stack of the context running on this thread (ASan builds track it).
extern thread_local StackRange tls_running_stack;
StackRange thread_stack() noexcept;
inline StackRange current_stack() noexcept {
  if (tls_running_stack.bottom == nullptr) tls_running_stack = thread_stack();
  return tls_running_stack;
}
#elif FIBERLOOP_TSAN
inline StackRange current_stack() noexcept { return {nullptr, 0, __tsan_get_current_fiber()}; }
// The TSan fiber of a context that exited, destroyed by whoever runs next
// (a fiber cannot destroy its own).
extern thread_local void* tls_exited_tsan_fiber;
inline void reap_exited_context() noexcept {
  if (tls_exited_tsan_fiber != nullptr) {
    __tsan_destroy_fiber(tls_exited_tsan_fiber);
    tls_exited_tsan_fiber = nullptr;
  }
}
#else
inline StackRange current_stack() noexcept { return {}; }
#endif

// Describes the stack [bottom, bottom + size) of a context about to be made.
// TSan builds create the context's TSan fiber here; exit_context() destroys
// it, or forget_context_stack() if the context never runs.
inline StackRange context_stack(const void* bottom, std::size_t size) noexcept {
#if FIBERLOOP_TSAN
  return {bottom, size, __tsan_create_fiber(0)};
#else
  return {bottom, size};
#endif
}
inline void forget_context_stack([[maybe_unused]] StackRange& stack) noexcept {
#if FIBERLOOP_TSAN
  if (stack.tsan_fiber != nullptr) __tsan_destroy_fiber(stack.tsan_fiber);
  stack.tsan_fiber = nullptr;
#endif
}

// Clears stale sanitizer state from a stack about to be reused (ASan builds;
// nothing otherwise).
#if FIBERLOOP_ASAN
void prepare_stack_for_reuse(void* bottom, std::size_t size) noexcept;
#else
inline void prepare_stack_for_reuse(void*, std::size_t) noexcept {}
#endif

// A counter that one thread (the loop's) increments and another may read
// (the stall watchdog). The increment is a plain one: as a std::atomic (even
// relaxed) it cost 15 to 20 ns per channel message, as GCC does not optimize
// memory accesses across atomics and these sit in the inlined switch path.
// The reader loads the 8 aligned bytes with __atomic_load_n, so it sees the
// old or the new value, never a torn one; in C++'s memory model that is still
// a data race, so ThreadSanitizer builds use a real std::atomic.
class RelaxedCounter {
 public:
#if FIBERLOOP_TSAN
  void operator++() noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
#else
  // Only the owning thread increments.
  void operator++() noexcept { ++value_; }
  // Any thread.
  std::uint64_t get() const noexcept { return __atomic_load_n(&value_, __ATOMIC_RELAXED); }

 private:
  std::uint64_t value_ = 0;
#endif
};

}  // namespace fiberloop::internal
