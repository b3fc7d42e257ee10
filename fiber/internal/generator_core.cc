#include "fiber/internal/generator_core.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace fiberloop::internal {

GeneratorCore* GeneratorCore::create(const StackOptions& options, std::size_t callable_bytes,
                                     std::size_t callable_align, void (*invoke)(GeneratorCore&),
                                     void (*destroy)(void*)) {
  if (callable_bytes + sizeof(GeneratorCore) + 8192 > options.size) {
    throw std::logic_error("Generator: the body is " + std::to_string(callable_bytes) +
                           " bytes, too big for a " + std::to_string(options.size >> 10) +
                           " KiB stack; capture less by value or raise StackOptions::size");
  }
  StackPool& pool = StackPool::this_thread();
  Stack stack = pool.acquire(options);
  prepare_stack_for_reuse(stack.bottom(), stack.size);
  // [ ... context stack ... | callable | core ] <- stack.top
  auto top = reinterpret_cast<std::uintptr_t>(stack.top);
  const std::uintptr_t core_at = (top - sizeof(GeneratorCore)) & ~std::uintptr_t{63};
  auto* core = ::new (reinterpret_cast<void*>(core_at)) GeneratorCore;
  const std::size_t align = callable_align < 16 ? 16 : callable_align;
  const std::uintptr_t callable_at = (core_at - callable_bytes) & ~(align - 1);
  const std::uintptr_t context_top = callable_at & ~std::uintptr_t{63};
  core->pool_ = &pool;
  core->stack_ = stack;
  core->invoke_ = invoke;
  core->destroy_ = destroy;
  core->callable_ = reinterpret_cast<void*>(callable_at);
  core->start = &GeneratorCore::body_main;
  core->body_context_ =
      make_context(reinterpret_cast<void*>(context_top),
                   context_top - reinterpret_cast<std::uintptr_t>(stack.bottom()));
  core->body_stack_ = context_stack(
      stack.bottom(),
      static_cast<std::size_t>(core_at - reinterpret_cast<std::uintptr_t>(stack.bottom())));
  return core;
}

void GeneratorCore::destroy(GeneratorCore* core) noexcept {
  if (core->consumer_context_ != nullptr) {
    // Its body is running: this is called from inside it, or from another
    // fiber while the body is parked in the fiber that resumed it. Freeing
    // the stack would free that fiber's frames; there is nothing safe to do.
    std::fprintf(stderr,
                 "fiberloop: a Generator was destroyed while its body was running (from inside "
                 "the body, or from another fiber while the body is parked in the fiber that "
                 "resumed it); destroy a generator only from its consumer, between resumes\n");
    std::abort();
  }
  if (core->started_ && !core->finished_) {
    core->unwinding_ = true;
    try {
      while (!core->finished_ && !core->abandoned_) core->resume(nullptr);
    } catch (...) {
      // The body threw while unwinding; nobody is left to tell.
    }
    if (core->abandoned_) {
      std::fprintf(stderr,
                   "fiberloop: a Generator's body caught its unwind %d times (a catch (...) "
                   "that does not rethrow?) and was abandoned; its %zu KiB stack is leaked, not "
                   "freed under a live frame\n",
                   kMaxUnwinds, core->stack_.size / 1024);
      return;
    }
  }
  if (!core->started_) forget_context_stack(core->body_stack_);  // else it exited
  if (core->callable_alive_) core->destroy_(core->callable_);
  StackPool* pool = core->pool_;
  Stack stack = core->stack_;
  core->~GeneratorCore();
  pool->release(stack);
}

void GeneratorCore::discard(GeneratorCore* core) noexcept {
  core->callable_alive_ = false;
  destroy(core);
}

bool GeneratorCore::resume(void* sent) {
  if (finished_) return false;
  if (consumer_context_ != nullptr) {
    throw std::logic_error(
        "Generator: resumed while its body is already running (from inside the body, or from "
        "another fiber while the body is parked); one consumer at a time");
  }
  started_ = true;
  sent_ = sent;
  consumer_stack_ = current_stack();
  const GeneratorSwitchHook hook = generator_switch_hook();
  const unsigned unwinding = tls_exception_state->uncaught;
  if (hook != nullptr) hook(&body_state_, unwinding, true);
  switch_context(&consumer_context_, &consumer_exceptions_, body_context_, body_exceptions_, this,
                 body_stack_);
  if (hook != nullptr) hook(&body_state_, unwinding, false);
  consumer_context_ = nullptr;
  if (finished_ && error_) std::rethrow_exception(std::exchange(error_, nullptr));
  return !finished_;
}

void* GeneratorCore::yield(void* value) {
  if (unwinding_) {
    if (++unwinds_delivered_ > kMaxUnwinds) {  // back to destroy() for good
      abandoned_ = true;
      exit_context(consumer_context_, consumer_exceptions_, nullptr, consumer_stack_);
    }
    throw GeneratorUnwind{};
  }
  yielded_ = value;
  switch_context(&body_context_, &body_exceptions_, consumer_context_, consumer_exceptions_,
                 nullptr, consumer_stack_);
  yielded_ = nullptr;
  if (unwinding_) {
    ++unwinds_delivered_;
    throw GeneratorUnwind{};
  }
  return sent_;
}

void GeneratorCore::body_main(ContextEntry* entry) noexcept {
  auto& core = static_cast<GeneratorCore&>(*entry);
  if (!core.unwinding_) {
    try {
      core.invoke_(core);
    } catch (const GeneratorUnwind&) {
    } catch (...) {
      core.error_ = std::current_exception();
    }
  }
  core.destroy_(core.callable_);
  core.callable_alive_ = false;
  core.finished_ = true;
  exit_context(core.consumer_context_, core.consumer_exceptions_, nullptr, core.consumer_stack_);
}

// ---- what fiber/generator.h declares --------------------------------------

GeneratorCore* generator_create(const StackOptions& options, std::size_t callable_bytes,
                                std::size_t callable_align, void (*invoke)(GeneratorCore&),
                                void (*destroy)(void*)) {
  return GeneratorCore::create(options, callable_bytes, callable_align, invoke, destroy);
}
void* generator_callable(GeneratorCore& core) noexcept { return core.callable(); }
void generator_destroy(GeneratorCore* core) noexcept { GeneratorCore::destroy(core); }
void generator_discard(GeneratorCore* core) noexcept { GeneratorCore::discard(core); }
bool generator_resume(GeneratorCore& core, void* sent) { return core.resume(sent); }
void* generator_yielded(GeneratorCore& core) noexcept { return core.yielded(); }
void* generator_yield(GeneratorCore& core, void* value) { return core.yield(value); }
bool generator_started(const GeneratorCore& core) noexcept { return core.started(); }
bool generator_finished(const GeneratorCore& core) noexcept { return core.finished(); }

}  // namespace fiberloop::internal
