// The untyped half of Generator: its own stack and context, and the switches
// between the consumer and the body. Lives at the top of its own stack.
// Private to fiber/: Generator<Y, S> reaches it through the functions that
// fiber/generator.h declares (defined in generator_core.cc).
#pragma once

#include <cstddef>
#include <exception>

#include "fiber/generator.h"
#include "fiber/internal/context.h"
#include "fiber/internal/stack_pool.h"
#include "fiber/stack.h"

namespace fiberloop::internal {

class GeneratorCore : public ContextEntry {
 public:
  // Makes a generator whose callable (of `callable_bytes`) will sit on its
  // stack; `invoke` runs the callable, `destroy` destroys it.
  // Throws: std::system_error if no stack memory can be had.
  static GeneratorCore* create(const StackOptions& options, std::size_t callable_bytes,
                               std::size_t callable_align, void (*invoke)(GeneratorCore&),
                               void (*destroy)(void*));
  // Unwinds an unfinished body, destroys the callable, frees the stack. A
  // body that catches its unwind kMaxUnwinds times is abandoned instead: one
  // report on stderr, and its stack (with the callable on it) is leaked,
  // never freed under a live frame (fibers get the same at loop shutdown).
  static void destroy(GeneratorCore* core) noexcept;
  static constexpr int kMaxUnwinds = 64;
  // Frees a generator whose callable was never constructed.
  static void discard(GeneratorCore* core) noexcept;

  // Consumer side: runs the body until it yields (returns true) or finishes
  // (returns false), with `sent` as what the pending yield returns.
  // Throws: what the body threw (once).
  bool resume(void* sent);

  // Body side: hands `value` to the consumer and waits; returns the pointer
  // passed to the next resume().
  // Throws: GeneratorUnwind when the generator is being destroyed.
  void* yield(void* value);

  void* callable() const noexcept { return callable_; }
  void* yielded() const noexcept { return yielded_; }
  bool started() const noexcept { return started_; }
  bool finished() const noexcept { return finished_; }

 private:
  GeneratorCore() = default;
  static void body_main(ContextEntry* entry) noexcept;

  StackPool* pool_ = nullptr;
  Stack stack_;
  ContextHandle body_context_ = nullptr;      // saved while the consumer runs
  ContextHandle consumer_context_ = nullptr;  // saved while the body runs
  StackRange consumer_stack_;                 // (ASan, TSan) the consumer's context
  StackRange body_stack_;                     // (ASan, TSan) the body's context
  ExceptionState consumer_exceptions_;        // saved while the body runs
  ExceptionState body_exceptions_;            // saved while the consumer runs
  void (*invoke_)(GeneratorCore&) = nullptr;
  void (*destroy_)(void*) = nullptr;
  void* callable_ = nullptr;
  void* yielded_ = nullptr;
  void* sent_ = nullptr;
  std::exception_ptr error_;
  bool started_ = false;
  bool finished_ = false;
  bool unwinding_ = false;
  bool callable_alive_ = true;
  bool abandoned_ = false;      // the body would not unwind: its stack is leaked
  void* body_state_ = nullptr;  // the loop's, of the body (see GeneratorSwitchHook)
  int unwinds_delivered_ = 0;   // GeneratorUnwinds thrown into the body so far
};

}  // namespace fiberloop::internal
