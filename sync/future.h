// Promise<T> / Future<T>: a value that arrives later (asyncio's Future).
//
//   fiberloop::Promise<int> p;
//   fiberloop::Future<int> f = p.get_future();
//   loop.call_later(10ms, [p]() mutable { p.set_value(42); });
//   int v = f.get();   // parks this fiber until then
//
// Any thread: a Promise may be made and set, and a Future waited on, by
// fibers of any loop and by plain threads (a plain thread's get() blocks it).
// Copies of a Promise or Future share one state. If every copy of a Promise
// is destroyed unsatisfied, get() throws BrokenPromise rather than waiting
// forever. A done-callback runs on the loop that added it, which must outlive
// the Future's completion.
#pragma once

#include <atomic>
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

// Runs fn on `loop`: with call_soon on its own thread, else call_soon_threadsafe.
void call_soon_on(Loop& loop, std::function<void()> fn);

template <class T>
struct FutureState {
  using Value = std::conditional_t<std::is_void_v<T>, std::monostate, T>;
  struct Callback {
    Loop* loop;  // where it runs
    std::function<void(Future<T>)> fn;
  };
  FutureState() : waiters(WaitKind::kFuture) {}
  std::optional<Value> value;
  std::exception_ptr error;
  WaitQueue waiters;  // its home() guards every field
  std::vector<Callback> callbacks;
  std::atomic<bool> done{false};  // set once value or error is, under the guard
  bool ready() const noexcept { return done.load(std::memory_order_acquire); }
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
  //         on an empty Future, or when it must wait on a loop's thread
  //         outside a fiber (a plain thread blocks).
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
  // calling thread's loop (a callback) once the Future is ready; at its next
  // iteration if it already is (asyncio's add_done_callback).
  // Throws: std::logic_error on an empty Future.
  template <class F>
  requires std::is_invocable_v<F&> &&
      (!std::is_invocable_v<F&, Future<T>>)void add_done_callback(F fn) {
    add_done_callback([fn = std::move(fn)](const Future<T>&) mutable { fn(); });
  }
  // Throws: std::logic_error from a thread with no Loop.
  void add_done_callback(std::function<void(Future<T>)> fn) {
    auto& s = state("add_done_callback");
    Loop& here = internal::current_loop("Future::add_done_callback");
    {
      internal::SyncGuard guard(s.waiters.home());
      if (!s.ready()) {
        s.callbacks.push_back({&here, std::move(fn)});
        return;
      }
    }
    here.call_soon([fn = std::move(fn), self = *this] { fn(self); });
  }

 private:
  template <class>
  friend class Promise;
  explicit Future(std::shared_ptr<internal::FutureState<T>> s) : state_(std::move(s)) {}
  internal::FutureState<T>& wait_ready() const {
    auto& s = state("get");
    if (!s.ready()) {
      internal::SyncGuard guard(s.waiters.home(), internal::Entry::waiting());
      if (!s.ready()) s.waiters.wait(guard, internal::kNever, "Future::get");
    }
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
  Promise()
      : state_(std::make_shared<internal::FutureState<T>>()),
        breaker_(std::make_shared<Breaker>(state_)) {}

  // The Future this Promise completes (any number may share it).
  Future<T> get_future() const { return Future<T>(state_); }

  // Stores the value and wakes every waiter in get(); each done-callback is
  // scheduled on the loop that added it.
  // Throws: std::logic_error if a value or exception was set already, or
  //         on a moved-from Promise.
  template <class... Args>
  void set_value(Args&&... args) {
    complete(state_, "set_value", [&](auto& s) { s.value.emplace(std::forward<Args>(args)...); });
  }
  // As set_value(), with an exception that get() will rethrow.
  void set_exception(std::exception_ptr error) {
    complete(state_, "set_exception", [&](auto& s) { s.error = std::move(error); });
  }

 private:
  // Stores the outcome with `store(state)` and wakes the waiters, unless one
  // was stored already: then throws std::logic_error naming `what`, or,
  // with what == nullptr, does nothing.
  template <class Store>
  static void complete(const std::shared_ptr<internal::FutureState<T>>& state, const char* what,
                       Store store) {
    if (!state) {
      throw std::logic_error(std::string("Promise::") + what +
                             ": the Promise is empty (moved from); use the one it moved to");
    }
    internal::FutureState<T>& s = *state;
    std::vector<typename internal::FutureState<T>::Callback> callbacks;
    {
      internal::SyncGuard guard(s.waiters.home());
      if (s.ready()) {
        if (what == nullptr) return;
        throw std::logic_error(std::string("Promise::") + what +
                               ": the promise is already satisfied; set it once");
      }
      store(s);
      s.done.store(true, std::memory_order_release);
      callbacks.swap(s.callbacks);
      s.waiters.notify_all(guard);  // lets go of the state
    }
    for (auto& c : callbacks) {
      internal::call_soon_on(*c.loop, [fn = std::move(c.fn), f = Future<T>(state)] { fn(f); });
    }
  }

  // Shared by the copies of one Promise: the last one destroyed unsatisfied
  // breaks it, so fibers in get() wake with BrokenPromise instead of waiting
  // forever.
  struct Breaker {
    explicit Breaker(std::shared_ptr<internal::FutureState<T>> s) : state(std::move(s)) {}
    ~Breaker() {
      if (state->ready()) return;
      complete(state, nullptr, [](auto& s) { s.error = std::make_exception_ptr(BrokenPromise()); });
    }
    std::shared_ptr<internal::FutureState<T>> state;
  };

  std::shared_ptr<internal::FutureState<T>> state_;
  std::shared_ptr<Breaker> breaker_;
};

}  // namespace fiberloop
