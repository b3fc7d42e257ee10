// How spawn() turns a callable into a fiber's body: what it accepts, checked
// up front so that a mistake stops at one message that says what to do, and
// the type-erased entry that runs the callable placed in the fiber's record
// and stores what it returned or threw.
#pragma once

#include <exception>
#include <functional>
#include <source_location>
#include <type_traits>

#include "loop/internal/fiber_record.h"
#include "loop/options.h"

namespace fiberloop {
template <class T>
class Task;
}

namespace fiberloop::internal {

// Invocable with no arguments (its arguments, if any, are captured).
template <class F>
concept InvocableAlone = std::is_invocable_v<std::decay_t<F> &&>;
// Such a callable whose result is a reference, which a fiber cannot return
// (what it refers to may be gone when the Task is joined).
template <class F>
concept ReturnsReference =
    InvocableAlone<F> && std::is_reference_v<std::invoke_result_t<std::decay_t<F> &&>>;
// A callable spawn() can run. A reference result takes spawn's rejecting
// overload, as wrong arguments do, so that its message is the only error.
template <class F>
concept Spawnable = InvocableAlone<F> && !ReturnsReference<F>;

// The Task a spawn of F returns, with the return type checked first.
template <class F>
struct SpawnResult {
  using R = std::invoke_result_t<std::decay_t<F>&&>;
  static_assert(!std::is_reference_v<R>,
                "a fiber cannot return a reference; return a value, or a pointer or "
                "std::reference_wrapper to what outlives the fiber");
  using type = Task<R>;
};

template <class T>
inline constexpr bool kSourceLocation = std::is_convertible_v<T, std::source_location>;
template <class T>
inline constexpr bool kSpawnOptions = std::is_same_v<std::remove_cvref_t<T>, SpawnOptions>;

// The argument lists spawn() takes: (fn), (fn, where), (options, fn),
// (options, fn, where), with fn Spawnable.
template <class... Args>
struct ValidSpawn : std::false_type {};
template <class F>
struct ValidSpawn<F> : std::bool_constant<Spawnable<F>> {};
template <class A, class B>
struct ValidSpawn<A, B> : std::bool_constant<(Spawnable<A> && kSourceLocation<B>) ||
                                             (kSpawnOptions<A> && Spawnable<B>)> {};
template <class O, class F, class W>
struct ValidSpawn<O, F, W>
    : std::bool_constant<kSpawnOptions<O> && Spawnable<F> && kSourceLocation<W>> {};
template <class... Args>
inline constexpr bool kValidSpawn = ValidSpawn<Args...>::value;

// Instantiated only for argument lists spawn() does not take (the
// std::thread habit spawn(f, 21), or a callable that needs arguments): the
// one message they get.
template <class... Args>
inline constexpr bool kSpawnMisuse = false;
// (Its return type, like the spawns' that call it, is deduced: a call then
// instantiates it at once, so this message comes before any error in the
// caller's use of the result.)
template <class... Args>
inline constexpr bool kReturnsReference = (ReturnsReference<Args> || ...);
template <class... Args>
auto reject_spawn_arguments() {
  // One of the two fails, and says what to do.
  static_assert(!kReturnsReference<Args...>,
                "a fiber cannot return a reference; return a value, or a pointer or "
                "std::reference_wrapper to what outlives the fiber");
  static_assert(kReturnsReference<Args...> || kSpawnMisuse<Args...>,
                "spawn takes a callable with no arguments (and optionally SpawnOptions "
                "first); capture the arguments in a lambda instead: spawn([=] { f(21); })");
}

// Runs inside a fiber before its body, when it was cancelled before it
// first ran: clears the cancel and throws Cancelled (fibers.cc).
[[noreturn]] void throw_cancelled_before_start(FiberRecord& f);

// The entry of a fiber whose callable is an Fn returning R: runs it (run ==
// true) or only destroys it, filling the record's result or error.
template <class Fn, class R>
struct FiberBody {
  static void run(FiberRecord* f, bool run) noexcept {
    Fn& fn = *static_cast<Fn*>(f->callable);
    if (run) {
      try {
        if (f->pending & FiberRecord::kCancel) [[unlikely]]
          throw_cancelled_before_start(*f);
        if constexpr (std::is_void_v<R>) {
          std::invoke(std::move(fn));
        } else {
          f->result.emplace<R>(std::invoke(std::move(fn)));
        }
      } catch (...) {
        f->error = std::current_exception();
      }
    }
    fn.~Fn();
    f->free_callable();
  }
};

}  // namespace fiberloop::internal
