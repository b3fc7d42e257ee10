// Time types, options for loops and fibers, and what the loop reports about them.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ratio>
#include <source_location>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "fiber/stack.h"

namespace fiberloop {

using Clock = std::chrono::steady_clock;
using Duration = Clock::duration;  // nanoseconds
using TimePoint = Clock::time_point;

namespace internal {
// Whether T is a std::chrono::duration (of any period, reduced or not).
template <class T>
inline constexpr bool kIsDuration = false;
template <class Rep, class Period>
inline constexpr bool kIsDuration<std::chrono::duration<Rep, Period>> = true;
// A count to_duration() can compare safely: floating point, or a standard
// integer type (what std::cmp_less takes: not bool, not a character type).
template <class Rep>
inline constexpr bool kPlainCount = std::is_floating_point_v<Rep> ||
                                    (std::is_integral_v<Rep> && !std::is_same_v<Rep, bool> &&
                                     !std::is_same_v<Rep, char> && !std::is_same_v<Rep, wchar_t> &&
                                     !std::is_same_v<Rep, char8_t> &&
                                     !std::is_same_v<Rep, char16_t> &&
                                     !std::is_same_v<Rep, char32_t>);
}  // namespace internal

// Any std::chrono::duration as a Duration, saturating: a span longer than
// nanoseconds can hold (std::chrono::hours::max(), meaning "for ever")
// becomes Duration::max(), and a negative one past Duration::min() becomes
// min(). (The plain conversion multiplies and overflows: hours::max()
// comes out as -1 h.) A floating-point count is rounded to the nearest
// nanosecond. Every function here that takes a Duration also
// takes any other duration through it: sleep_for(std::chrono::hours::max())
// sleeps for ever, sleep_for(std::chrono::duration<double>(0.5)) half a
// second. (A LoopOptions field or a TimePoint converts plainly: call this.)
// Throws: std::invalid_argument for a floating-point NaN.
template <class Rep, class Period>
requires internal::kPlainCount<Rep>
constexpr Duration to_duration(std::chrono::duration<Rep, Period> d) {
  using Nanos = std::ratio_divide<Period, std::nano>;  // how many ns per tick
  if constexpr (std::is_floating_point_v<Rep>) {
    if (__builtin_isnan(d.count())) {
      throw std::invalid_argument("fiberloop: a duration that is not a number (NaN)");
    }
    const long double ns = static_cast<long double>(d.count()) * Nanos::num / Nanos::den;
    if (ns >= static_cast<long double>(Duration::max().count())) return Duration::max();
    if (ns <= static_cast<long double>(Duration::min().count())) return Duration::min();
    return Duration(static_cast<Duration::rep>(ns < 0 ? ns - 0.5L : ns + 0.5L));
  } else if constexpr (Nanos::den == 1 && Nanos::num > 1) {  // coarser: the conversion multiplies
    constexpr Duration::rep most = Duration::max().count() / Nanos::num;
    constexpr Duration::rep least = Duration::min().count() / Nanos::num;
    if (std::cmp_greater(d.count(), most)) return Duration::max();
    if (std::cmp_less(d.count(), least)) return Duration::min();
    return Duration(static_cast<Duration::rep>(d.count()) * Nanos::num);
  } else if constexpr (Nanos::den == 1) {  // nanoseconds, in another representation
    if (std::cmp_greater(d.count(), Duration::max().count())) return Duration::max();
    if (std::cmp_less(d.count(), Duration::min().count())) return Duration::min();
    return Duration(static_cast<Duration::rep>(d.count()));
  } else if constexpr (Nanos::num == 1) {  // finer: the conversion divides
    return std::chrono::duration_cast<Duration>(d);
  } else {  // an odd period (a third of a second): through the wide type
    return fiberloop::to_duration(std::chrono::duration<long double, Period>(d.count()));
  }
}

// A duration type other than Duration itself that to_duration() converts.
template <class D>
concept OtherDuration = internal::kIsDuration<D> && internal::kPlainCount<typename D::rep> &&
    !std::is_same_v<D, Duration>;

// Identifies a fiber for the life of its loop; never reused. 0 is "no fiber".
using FiberId = std::uint64_t;

// The kernel interface a loop waits for fds and deadlines with.
enum class Backend : std::uint8_t {
  // FIBERLOOP_BACKEND=epoll|io_uring if the environment sets it, else
  // io_uring, which measures faster here (bench/RESULTS.md). If the kernel
  // refuses io_uring (io_uring_disabled, a seccomp filter, Linux before
  // 5.19), or fiberloop was built without liburing, the loop uses epoll; a
  // kernel's refusal is said once per process, in one line on stderr.
  automatic,
  epoll,
  // Socket I/O that would wait, and file I/O, handed to the kernel as
  // io_uring operations (RECV into the caller's buffer, SEND, SENDMSG,
  // ACCEPT, READ, WRITE; a one-shot POLL for any other wait), all of a loop
  // iteration's submitted with its wait in one io_uring_enter(2). Creating
  // the loop throws std::system_error if the kernel refuses it.
  io_uring,
};

// "epoll", "io_uring" or "automatic".
const char* to_string(Backend backend) noexcept;

// How a Loop is set up. Every field has a working default.
struct LoopOptions {
  // The kernel interface for waiting (see Backend); Loop::backend() says
  // which one a loop got.
  Backend backend = Backend::automatic;
  // The stack of fibers spawned without SpawnOptions::stack.
  StackOptions stack{};
  // The most worker threads run_blocking() starts (lazily, as jobs need
  // them). 0 for a loop that never uses them: run_blocking() then throws
  // std::logic_error, as do resolve() and the file calls that use workers
  // (all of them on epoll; on io_uring open, size, sync, read_file,
  // write_file, and I/O on files that are not seekable).
  std::size_t blocking_threads = default_blocking_threads();
  // How long the loop's shutdown (~Loop, the end of run(main)) waits for
  // worker jobs still running, counted after its 100 ms grace for fibers
  // (asyncio's shutdown_default_executor timeout). A job still running then
  // (blocked for ever: an open() of a FIFO without its other end, a read of
  // a pipe nobody writes) that is a run_blocking, resolve, file open or
  // read_file job is named on stderr and left to its worker, which is
  // detached: the shutdown returns, the job's result is dropped whenever it
  // finishes, and the process may exit under it (a run_blocking function
  // should own what it uses). While a file operation that works on its
  // caller's memory (read_at, write_at, size, sync on a worker, write_file's
  // writes) runs, the shutdown waits on instead, and names it once on
  // stderr. Duration::max() waits for ever. A loop that gives
  // up keeps its workers' pool allocated for good.
  Duration blocking_shutdown_timeout = std::chrono::seconds(10);
  // The stall detector (asyncio's slow_callback_duration, Seastar's reactor
  // stall detector): a fiber or callback that runs longer than this without
  // yielding is reported on stderr, while it still runs, with its name,
  // spawn site and the loop thread's backtrace. Zero (the default) turns it
  // off, unless the environment sets FIBERLOOP_STALL_THRESHOLD_MS. Costs a
  // watchdog thread that wakes four times per threshold; the report is made
  // on the loop thread from a SIGURG handler, which the detector installs
  // (and unblocks on the loop's thread, a LoopGroup's too).
  Duration stall_threshold{};

  // asyncio's default executor size: min(32, CPUs + 4).
  static std::size_t default_blocking_threads() noexcept;
};

// How one fiber is spawned.
struct SpawnOptions {
  // Shown by Loop::dump(), the exception handler and the stack-overflow report.
  std::string name{};
  // Overrides LoopOptions::stack for this fiber.
  std::optional<StackOptions> stack{};
};

// What the loop knows of a fiber, as given to the exception handler.
struct FiberInfo {
  FiberId id = 0;
  std::string name;
  std::source_location spawned_at{};  // where spawn() was called
};

// Counters since the loop was created, and what is alive now.
struct LoopStats {
  std::uint64_t fibers_alive = 0;  // spawned and not yet finished
  std::uint64_t fibers_created = 0;
  std::uint64_t fibers_finished = 0;
  std::uint64_t switches = 0;    // context switches, fiber or scheduler
  std::uint64_t iterations = 0;  // loop iterations (each runs the fibers ready when it began)
  std::uint64_t stacks_outstanding = 0;  // stacks held by live fibers and generators of this thread
  std::uint64_t stacks_pooled = 0;       // free stacks kept for reuse
  std::uint64_t timers_pending = 0;      // sleeps, timeouts and call_later/call_at callbacks queued
  std::uint64_t callbacks_run = 0;
  std::uint64_t polls = 0;           // waits: epoll_wait or io_uring_enter (Loop::backend())
  Duration time_blocked{};           // spent blocked in those waits, idle
  std::uint64_t blocking_jobs = 0;   // run_blocking() jobs not yet finished
  std::uint64_t fd_waiters = 0;      // fibers parked on fd readiness
  std::uint64_t fds_registered = 0;  // fds registered with the loop's epoll or io_uring
  // The deepest any live fiber has used its stack, in bytes (to the page).
  // Measured only when asked for: Loop::stats(LoopStats::kWithStackHighWater).
  std::uint64_t stack_high_water = 0;

  // Loop::stats(kWithStackHighWater) also measures stack_high_water (one
  // mincore(2) per live fiber).
  static constexpr bool kWithStackHighWater = true;
};

}  // namespace fiberloop
