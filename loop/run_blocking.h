// run_blocking: call blocking code (a file read, a DNS lookup, a C library)
// without blocking the loop.
//
//   std::string text = fiberloop::run_blocking([] { return read_whole_file("/etc/hosts"); });
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace fiberloop {
namespace internal {

// Runs `work` on one of the calling fiber's loop's worker threads and parks
// the fiber until it returns (loop/blocking_pool.cc). `work` must not throw.
// If the fiber is interrupted first: `interruptible`, throws Cancelled or
// TimeoutError at once and `work` runs on; otherwise waits for `work` all
// the same (it may use the caller's memory) and leaves the interrupt
// pending for the fiber's next suspension point.
// `what` names the job where the loop's shutdown reports it ("File::open
// /tmp/f"). Once the shutdown's LoopOptions::blocking_shutdown_timeout has
// passed, it gives up on the interruptible jobs still running (their
// workers detached), unless an uninterruptible one runs too: that one works
// on its caller's memory, and the shutdown waits for it (and so for all).
// Throws: std::logic_error outside a fiber, or with
//         LoopOptions::blocking_threads 0; std::system_error if no worker
//         thread can be started; Cancelled if the loop is closing.
void run_on_worker(std::function<void()> work, bool interruptible, std::string what);

// run_blocking(fn), its job named `what` (as run_on_worker).
template <class F>
auto run_blocking_as(std::string what, F&& fn) -> std::invoke_result_t<std::decay_t<F>>;

}  // namespace internal

// Runs `fn` on one of the loop's worker threads (started lazily, at most
// LoopOptions::blocking_threads) and parks the calling fiber until it
// finishes; the loop runs other fibers meanwhile (asyncio's to_thread).
// If the calling fiber is cancelled (or times out) while `fn` runs, it gets
// Cancelled (or TimeoutError) at once; `fn` runs on, and its result is
// dropped when it finishes. `fn` must not touch the loop. `fn`, with all it
// captures, is destroyed on the worker as soon as it returns, before the
// calling fiber resumes. The loop's shutdown waits for a running `fn` for
// at most LoopOptions::blocking_shutdown_timeout, then leaves it to its
// worker: an `fn` that may block for long should own what it uses (capture
// by value), since it may outlive the caller's frames, and the loop.
// Returns: what `fn` returns.
// Throws: what `fn` throws; Cancelled; TimeoutError; std::logic_error outside
//         a fiber, or with LoopOptions::blocking_threads 0; std::system_error
//         if no worker thread can be started.
template <class F>
auto run_blocking(F&& fn) -> std::invoke_result_t<std::decay_t<F>> {
  return internal::run_blocking_as("run_blocking", std::forward<F>(fn));
}

template <class F>
auto internal::run_blocking_as(std::string what, F&& fn) -> std::invoke_result_t<std::decay_t<F>> {
  using Fn = std::decay_t<F>;
  using R = std::invoke_result_t<Fn>;
  using Value = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
  struct Job {
    explicit Job(F&& f) : fn(std::in_place, std::forward<F>(f)) {}
    std::optional<Fn> fn;  // reset on the worker once it has run
    std::optional<Value> value;
    std::exception_ptr error;
  };
  auto job = std::make_shared<Job>(std::forward<F>(fn));
  internal::run_on_worker(
      [job] {  // on a worker thread
        try {
          if constexpr (std::is_void_v<R>) {
            std::invoke(std::move(*job->fn));
            job->value.emplace();
          } else {
            job->value.emplace(std::invoke(std::move(*job->fn)));
          }
        } catch (...) {
          job->error = std::current_exception();
        }
        job->fn.reset();  // its captures die here, off the loop, before the fiber resumes
      },
      /*interruptible=*/true, std::move(what));
  if (job->error) std::rethrow_exception(job->error);
  if constexpr (!std::is_void_v<R>) return std::move(*job->value);
}

}  // namespace fiberloop
