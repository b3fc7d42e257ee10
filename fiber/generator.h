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
// Works with or without a Loop. A generator is used on the thread that made it.
#pragma once

#include "fiber/internal/require_cxx20.h"  // IWYU pragma: keep

#include <cstddef>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

#include "fiber/internal/generator_core.h"
#include "fiber/stack.h"

namespace fiberloop {

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
      void* sent = core_.yield(&value);
      return std::move(*static_cast<S*>(sent));
    }

   private:
    friend class Generator;
    explicit Context(internal::GeneratorCore& core) : core_(core) {}
    internal::GeneratorCore& core_;
  };

  // Makes a generator running `body(Context&)` on a stack of `stack`. The
  // body does not start yet.
  // Throws: std::system_error if no stack memory can be had.
  template <class F>
  requires std::is_invocable_v < std::decay_t<F>
  &, Context& > explicit Generator(F&& body, StackOptions stack = {}) {
    using Fn = std::decay_t<F>;
    core_ = internal::GeneratorCore::create(
        stack, sizeof(Fn), alignof(Fn),
        [](internal::GeneratorCore& core) {
          Context co(core);
          (*static_cast<Fn*>(core.callable()))(co);
        },
        [](void* fn) { static_cast<Fn*>(fn)->~Fn(); });
    try {
      ::new (core_->callable()) Fn(std::forward<F>(body));
    } catch (...) {
      internal::GeneratorCore::discard(core_);
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
  //         std::logic_error on a moved-from generator.
  std::optional<Y> next() {
    S none{};
    return resume(&none);
  }

  // Resumes the body so that its pending yield returns `value`; returns the
  // next value as next() does. The first resume has no yield to receive a
  // value: prime a generator with next() first, as in Python.
  // Throws: as next(); std::logic_error when the body has not started.
  std::optional<Y> send(S value) {
    if (core_ != nullptr && !core_->started()) {
      throw std::logic_error(
          "Generator::send: the body has not started, so no yield can receive the value; call "
          "next() first");
    }
    return resume(&value);
  }

  // True once the body has returned or thrown.
  bool done() const noexcept { return core_ == nullptr || core_->finished(); }

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
    if (!core_->resume(sent)) return std::nullopt;
    return std::optional<Y>(std::move(*static_cast<Y*>(core_->yielded())));
  }
  void reset() noexcept {
    if (core_ != nullptr) internal::GeneratorCore::destroy(std::exchange(core_, nullptr));
  }

  internal::GeneratorCore* core_ = nullptr;
};

}  // namespace fiberloop
