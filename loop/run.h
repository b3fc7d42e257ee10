// fiberloop::run: asyncio.run for fibers.
//
//   int main() { return fiberloop::run([] { /* plain sequential code */ return 0; }); }
#pragma once

#include "fiber/internal/require_cxx20.h"  // IWYU pragma: keep

#include <source_location>
#include <type_traits>
#include <utility>

#include "loop/loop.h"

namespace fiberloop {

// Creates a fresh Loop on this thread, runs `main` in a fiber until it
// finishes, cancels and unwinds every fiber still alive, and returns main's
// value or rethrows its exception.
// Throws: what `main` throws; std::logic_error if this thread already has a Loop.
template <class F>
auto run(F&& main, LoopOptions options = {},
         std::source_location where = std::source_location::current())
    -> std::invoke_result_t<std::decay_t<F>> {
  Loop loop(std::move(options));
  return loop.run_until_complete(std::forward<F>(main), where);
}

}  // namespace fiberloop
