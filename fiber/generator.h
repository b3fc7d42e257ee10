// Generator<Y, S>: a function that produces values one at a time, on its own
// stack (Python's generators, with send()).
//
//   fiberloop::Generator<int> squares([](fiberloop::Generator<int>::Context& co) {
//     for (int i = 1; i <= 3; ++i) co.yield(i * i);
//   });
//   for (int v : squares) std::cout << v << '\n';   // 1 4 9
//
// The body starts on the first next()/send()/begin(), not at construction.
// Inside a fiber of a running Loop the body may itself park (sleep, read a
// socket): the consuming fiber waits meanwhile and the loop runs others.
// The body runs inside its consumer's with_timeout() scopes and cancellation:
// a consumer's expired deadline, or a cancel of the consuming fiber, is
// thrown at the body's next wait. The body's own with_timeout() scopes stay
// with the body: one left open across a yield interrupts the body when it
// is resumed, never the consumer.
// Works with or without a Loop. A generator is used on the thread that made it.
#pragma once

#include <cstddef>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include "fiber/stack.h"

namespace fiberloop {
namespace internal {

// The untyped half of a Generator (fiber/internal/generator_core.h, private
// to fiber/): its stack, context and the switches. Generator<Y, S> reaches
// it only through these functions.
class GeneratorCore;

// Thrown at the body's yield when its Generator is destroyed unfinished, so
// that the body's destructors run. Not a std::exception; do not swallow it.
struct GeneratorUnwind {};

// A generator whose callable (of `callable_bytes`) will sit on its own stack;
// `invoke` runs the callable, `destroy` destroys it.
// Throws: std::system_error if no stack memory can be had.
GeneratorCore* generator_create(const StackOptions& options, std::size_t callable_bytes,
                                std::size_t callable_align, void (*invoke)(GeneratorCore&),
                                void (*destroy)(void*));
// Where the callable is to be constructed.
void* generator_callable(GeneratorCore& core) noexcept;
// Unwinds an unfinished body, destroys the callable, frees the stack.
void generator_destroy(GeneratorCore* core) noexcept;
// Frees a generator whose callable was never constructed.
void generator_discard(GeneratorCore* core) noexcept;
// Consumer side: runs the body until it yields (true) or finishes (false),
// with `sent` as what the pending yield returns. Throws: what the body threw.
bool generator_resume(GeneratorCore& core, void* sent);
// The value the body handed out at its last yield.
void* generator_yielded(GeneratorCore& core) noexcept;
// Body side: hands `value` out and waits; returns the next resume's `sent`.
// Throws: GeneratorUnwind when the generator is being destroyed.
void* generator_yield(GeneratorCore& core, void* value);
bool generator_started(const GeneratorCore& core) noexcept;
bool generator_finished(const GeneratorCore& core) noexcept;

}  // namespace internal

template <class Y, class S = std::monostate>
class Generator {
  static_assert(!std::is_reference_v<Y> && !std::is_reference_v<S>,
                "Generator yields and receives values, not references");

 public:
  // What the body receives: its way to hand out values.
  class Context {
   public:
    // Hands `value` to the consumer and suspends the body; returns the value
    // of the send() that resumes it (S{} when resumed by next()).
    // Throws: internal::GeneratorUnwind when the generator is destroyed while
    //         suspended here (let it pass: it unwinds the body).
    S yield(Y value) {
      void* sent = internal::generator_yield(core_, &value);
      return std::move(*static_cast<S*>(sent));
    }

   private:
    friend class Generator;
    explicit Context(internal::GeneratorCore& core) : core_(core) {}
    internal::GeneratorCore& core_;
  };

  // Makes a generator running `body(Context&)` on a stack of `stack`. The
  // body does not start yet.
  // Throws: std::system_error if no stack memory can be had;
  //         std::logic_error if the body (what it captures by value) does
  //         not fit on the stack with room to run.
  template <class F>
  requires std::is_invocable_v < std::decay_t<F>
  &, Context& > explicit Generator(F&& body, StackOptions stack = {}) {
    using Fn = std::decay_t<F>;
    core_ = internal::generator_create(
        stack, sizeof(Fn), alignof(Fn),
        [](internal::GeneratorCore& core) {
          Context co(core);
          (*static_cast<Fn*>(internal::generator_callable(core)))(co);
        },
        [](void* fn) { static_cast<Fn*>(fn)->~Fn(); });
    try {
      ::new (internal::generator_callable(*core_)) Fn(std::forward<F>(body));
    } catch (...) {
      internal::generator_discard(core_);
      throw;
    }
  }

  Generator(Generator&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
  Generator& operator=(Generator&& other) noexcept {
    if (this != &other) {
      reset();
      core_ = std::exchange(other.core_, nullptr);
    }
    return *this;
  }
  // Unwinds an unfinished body (its destructors run), then frees the stack.
  ~Generator() { reset(); }

  // Resumes the body; returns the next value, or nullopt once it has returned.
  // Throws: what the body threw (once; then the generator is finished);
  //         std::logic_error on a moved-from generator, or one resumed while
  //         its body runs (from the body itself, or another fiber's next()
  //         while the body is parked).
  std::optional<Y> next() {
    S none{};
    return resume(&none);
  }

  // Resumes the body so that its pending yield returns `value`; returns the
  // next value as next() does. The first resume has no yield to receive a
  // value: prime a generator with next() first, as in Python.
  // Throws: as next(); std::logic_error when the body has not started.
  std::optional<Y> send(S value) {
    if (core_ != nullptr && !internal::generator_started(*core_)) {
      throw std::logic_error(
          "Generator::send: the body has not started, so no yield can receive the value; call "
          "next() first");
    }
    return resume(&value);
  }

  // True once the body has returned or thrown.
  bool done() const noexcept { return core_ == nullptr || internal::generator_finished(*core_); }

  // Input iteration over the remaining values: for (Y v : gen) ...
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Y;
    using difference_type = std::ptrdiff_t;
    using pointer = Y*;
    using reference = Y&;

    iterator() = default;
    Y& operator*() noexcept { return *value_; }
    Y* operator->() noexcept { return &*value_; }
    iterator& operator++() {
      value_ = gen_->next();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return !it.value_.has_value();
    }

   private:
    friend class Generator;
    explicit iterator(Generator* gen) : gen_(gen), value_(gen->next()) {}
    Generator* gen_ = nullptr;
    std::optional<Y> value_;
  };

  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  std::optional<Y> resume(S* sent) {
    if (core_ == nullptr) throw std::logic_error("Generator: used after being moved from");
    if (!internal::generator_resume(*core_, sent)) return std::nullopt;
    return std::optional<Y>(std::move(*static_cast<Y*>(internal::generator_yielded(*core_))));
  }
  void reset() noexcept {
    if (core_ != nullptr) internal::generator_destroy(std::exchange(core_, nullptr));
  }

  internal::GeneratorCore* core_ = nullptr;
};

}  // namespace fiberloop
