// What spawn() accepts, checked up front so that a mistake stops at one
// message that says what to do, before any of fiberloop's internals are
// instantiated with the wrong types.
#pragma once

#include <source_location>
#include <type_traits>

#include "loop/options.h"

namespace fiberloop {
template <class T>
class Task;
}

namespace fiberloop::internal {

// A callable spawn() can run: invocable with no arguments (its arguments,
// if any, are captured).
template <class F>
concept Spawnable = std::is_invocable_v<std::decay_t<F> &&>;

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
template <class... Args>
void reject_spawn_arguments() {
  static_assert(kSpawnMisuse<Args...>,
                "spawn takes a callable with no arguments (and optionally SpawnOptions "
                "first); capture the arguments in a lambda instead: spawn([=] { f(21); })");
}

}  // namespace fiberloop::internal
