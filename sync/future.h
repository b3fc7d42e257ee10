// Promise<T> / Future<T>: a value that arrives later (asyncio's Future).
//
//   fiberloop::Promise<int> p;
//   fiberloop::Future<int> f = p.get_future();
//   loop.call_later(10ms, [p]() mutable { p.set_value(42); });
//   int v = f.get();   // parks this fiber until then
//
// A Future can be completed from a fiber, a loop callback, or another thread
// by way of Loop::call_soon_threadsafe. Single loop: both ends belong to the
// loop of the thread that made the Promise. Copies of a Promise or Future
// share one state. If every copy of a Promise is destroyed unsatisfied, get()
// throws BrokenPromise rather than waiting forever. Neither end may outlive
// the loop.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "loop/internal/scheduler.h"
#include "loop/loop.h"
#include "sync/internal/waiters.h"

namespace fiberloop {

template <class T>
class Future;

namespace internal {

template <class T>
struct FutureState {
  using Value = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
  explicit FutureState(Scheduler& loop) : loop(loop), waiters(WaitKind::kFuture) {}
  Scheduler& loop;
  std::optional<Value> value;
  std::exception_ptr error;
  WaitQueue waiters;
  std::vector<std::function<void(Future<T>)>> callbacks;
  bool ready() const noexcept { return value.has_value() || error != nullptr; }
};

}  // namespace internal

template <class T>
class Future {
 public:
  using Value = typename internal::FutureState<T>::Value;

  Future() = default;

  // Parks until the value or exception is set; returns the value (a
  // reference into the shared state; void for Future<void>) or rethrows.
  // Throws: the stored exception; Cancelled; TimeoutError; std::logic_error
  //         on an empty Future, or when it must park outside a fiber.
  decltype(auto) get() const& {
    auto& s = wait_ready();
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      return static_cast<const T&>(*s.value);
    }
  }
  // As get(), but moves the value out of the shared state (for a move-only
  // T): `auto p = std::move(future).get();`. Other copies of the Future then
  // see the moved-from value.
  T get() && {
    auto& s = wait_ready();
    if constexpr (!std::is_void_v<T>) return std::move(*s.value);
  }

  // True once a value or exception is set.
  bool ready() const noexcept { return state_ && state_->ready(); }

  // Runs fn(future), or fn() for a callable that takes no argument, on the
  // loop (through call_soon) once the Future is ready; at the next iteration
  // if it already is (asyncio's add_done_callback).
  // Throws: std::logic_error on an empty Future.
  template <class F>
  requires std::is_invocable_v<F&> &&
      (!std::is_invocable_v<F&, Future<T>>)void add_done_callback(F fn) {
    add_done_callback([fn = std::move(fn)](const Future<T>&) mutable { fn(); });
  }
  void add_done_callback(std::function<void(Future<T>)> fn) {
    auto& s = state("add_done_callback");
    s.loop.check_thread("Future::add_done_callback");
    if (s.ready()) {
      s.loop.owner().call_soon([fn = std::move(fn), self = *this] { fn(self); });
    } else {
      s.callbacks.push_back(std::move(fn));
    }
  }

 private:
  template <class>
  friend class Promise;
  explicit Future(std::shared_ptr<internal::FutureState<T>> s) : state_(std::move(s)) {}
  internal::FutureState<T>& wait_ready() const {
    auto& s = state("get");
    s.loop.check_thread("Future::get");
    if (!s.ready()) s.waiters.wait("Future::get");
    if (s.error) std::rethrow_exception(s.error);
    return s;
  }
  internal::FutureState<T>& state(const char* what) const {
    if (!state_) throw std::logic_error(std::string("Future::") + what + ": the Future is empty");
    return *state_;
  }
  std::shared_ptr<internal::FutureState<T>> state_;
};

// Thrown by Future::get() when every copy of its Promise was destroyed
// unsatisfied: no value will ever come.
class BrokenPromise : public std::logic_error {
 public:
  BrokenPromise()
      : std::logic_error(
            "Future::get: the Promise was destroyed without set_value or set_exception") {}
};

template <class T>
class Promise {
 public:
  // Throws: std::logic_error if this thread has no Loop.
  Promise()
      : state_(std::make_shared<internal::FutureState<T>>(this_loop())),
        breaker_(std::make_shared<Breaker>(state_)) {}

  // The Future this Promise completes (any number may share it).
  Future<T> get_future() const { return Future<T>(state_); }

  // Stores the value and wakes every fiber in get(); done-callbacks are
  // scheduled with call_soon.
  // Throws: std::logic_error if a value or exception was set already, or
  //         from a thread other than the loop's.
  template <class... Args>
  void set_value(Args&&... args) {
    check("set_value");
    state_->value.emplace(std::forward<Args>(args)...);
    finish();
  }
  // As set_value(), with an exception that get() will rethrow.
  void set_exception(std::exception_ptr error) {
    check("set_exception");
    state_->error = std::move(error);
    finish();
  }

 private:
  static internal::Scheduler& this_loop() {
    internal::Scheduler* core = internal::Scheduler::current();
    if (core == nullptr) internal::throw_no_loop("Promise");
    return *core;
  }
  void check(const char* what) const {
    state_->loop.check_thread(what);
    if (state_->ready()) {
      throw std::logic_error(std::string("Promise::") + what +
                             ": the promise is already satisfied; set it once");
    }
  }
  void finish() { finish(state_); }
  static void finish(const std::shared_ptr<internal::FutureState<T>>& state) {
    internal::FutureState<T>& s = *state;
    s.waiters.notify_all();
    for (auto& fn : s.callbacks) {
      s.loop.owner().call_soon([fn = std::move(fn), f = Future<T>(state)] { fn(f); });
    }
    s.callbacks.clear();
  }

  // Shared by the copies of one Promise: the last one destroyed unsatisfied
  // breaks it, so fibers in get() wake with BrokenPromise instead of waiting
  // forever.
  struct Breaker {
    explicit Breaker(std::shared_ptr<internal::FutureState<T>> s) : state(std::move(s)) {}
    ~Breaker() {
      if (state->ready()) return;
      if (internal::Scheduler::current() != &state->loop) {
        // The last copy died on another thread: break it on the loop's own.
        state->loop.owner().call_soon_threadsafe([s = state] { break_promise(s); });
        return;
      }
      break_promise(state);
    }
    static void break_promise(const std::shared_ptr<internal::FutureState<T>>& s) {
      if (s->ready()) return;
      s->error = std::make_exception_ptr(BrokenPromise());
      finish(s);
    }
    std::shared_ptr<internal::FutureState<T>> state;
  };

  std::shared_ptr<internal::FutureState<T>> state_;
  std::shared_ptr<Breaker> breaker_;
};

}  // namespace fiberloop
