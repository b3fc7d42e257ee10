// run_blocking: call blocking code (a file read, a DNS lookup, a C library)
// without blocking the loop.
//
//   std::string text = fiberloop::run_blocking([] { return read_whole_file("/etc/hosts"); });
#pragma once

#include "fiber/internal/require_cxx20.h"  // IWYU pragma: keep

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "loop/internal/loop_core.h"

namespace fiberloop {

// Runs `fn` on one of the loop's worker threads (started lazily, at most
// LoopOptions::blocking_threads, joined when the loop is destroyed) and parks
// the calling fiber until it finishes; the loop runs other fibers meanwhile.
// If the calling fiber is cancelled (or times out) while `fn` runs, it gets
// Cancelled (or TimeoutError) at once; `fn` runs on, and its result is
// dropped when it finishes. `fn` must not touch the loop.
// Returns: what `fn` returns.
// Throws: what `fn` throws; Cancelled; TimeoutError; std::logic_error outside
//         a fiber.
template <class F>
auto run_blocking(F&& fn) -> std::invoke_result_t<std::decay_t<F>> {
  using Fn = std::decay_t<F>;
  using R = std::invoke_result_t<Fn>;
  using Value = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
  struct Job {
    explicit Job(F&& f) : fn(std::forward<F>(f)) {}
    Fn fn;
    std::optional<Value> value;
    std::exception_ptr error;
    internal::FiberRecord* waiter = nullptr;  // null once the fiber stopped waiting
  };

  internal::FiberRecord& self = internal::running_fiber_or_throw("run_blocking");
  internal::LoopCore& loop = *self.loop;
  auto job = std::make_shared<Job>(std::forward<F>(fn));
  loop.submit_blocking([job, &loop] {  // on a worker thread
    try {
      if constexpr (std::is_void_v<R>) {
        std::invoke(std::move(job->fn));
        job->value.emplace();
      } else {
        job->value.emplace(std::invoke(std::move(job->fn)));
      }
    } catch (...) {
      job->error = std::current_exception();
    }
    loop.call_soon_threadsafe([job, &loop] {  // back on the loop thread
      loop.finish_blocking();
      if (internal::FiberRecord* waiter = std::exchange(job->waiter, nullptr)) loop.wake(*waiter);
    });
  });
  job->waiter = &self;
  try {
    loop.park(internal::WaitKind::kBlockingJob);  // until the job's completion wakes us
  } catch (...) {
    job->waiter = nullptr;  // the job finishes on its own; its result is dropped
    throw;
  }
  if (job->error) std::rethrow_exception(job->error);
  if constexpr (!std::is_void_v<R>) return std::move(*job->value);
}

}  // namespace fiberloop
