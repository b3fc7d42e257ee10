// Loop: one per thread; runs fibers round-robin and wakes them on time and I/O.
//
//   fiberloop::Loop loop;
//   auto t = loop.spawn([] { fiberloop::this_fiber::yield(); return 42; });
//   loop.run();          // until nothing can make progress
//   int v = t.join();    // 42
#pragma once

#include <exception>
#include <functional>
#include <iosfwd>
#include <memory>
#include <source_location>
#include <type_traits>
#include <utility>

#include "loop/internal/scheduler.h"
#include "loop/internal/spawn.h"
#include "loop/options.h"
#include "loop/task.h"
#include "loop/timer_handle.h"

namespace fiberloop {

// The Task type spawn() returns for a callable F.
template <class F>
using TaskFor = typename internal::SpawnResult<F>::type;

class Loop {
 public:
  // Becomes this thread's loop (Loop::current()).
  // Throws: std::logic_error if this thread already has a Loop;
  //         std::system_error if the backend cannot be set up (epoll,
  //         io_uring or eventfd creation failed).
  explicit Loop(LoopOptions options = {});
  // Closes the loop in bounded time (asyncio's close, made strict): pending
  // callbacks and timers are dropped, every live fiber is cancelled (and
  // again at each suspension point), nothing is waited for, and fibers that
  // still will not end after 64 iterations are reported on stderr and
  // abandoned, their stacks leaked rather than freed under a live frame.
  // Requires (checked: stops the process, saying so): called on the loop's
  // own thread, outside its run() (not from one of its fibers or callbacks;
  // nor by std::exit() called there, for a static or thread_local Loop:
  // stop() the loop and return from main instead).
  // Throws: std::logic_error for a loop of a LoopGroup (the group owns it:
  //         destroy the group); nothing is closed.
  ~Loop() noexcept(false);
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // The loop of the calling thread, or nullptr.
  static Loop* current() noexcept;
  // Its position in its LoopGroup; 0 for a lone loop.
  std::size_t index() const noexcept;

  // Creates a fiber running `fn` and queues it at the back of the ready queue.
  // Does not switch: the fiber first runs when the caller next suspends (or
  // when run() is called, from outside any fiber). `fn` is moved into the
  // fiber's record (on the heap if larger than 128 bytes, or aligned beyond
  // 16); the fiber takes its stack when it first runs, so spawning touches
  // no stack memory. If no stack can be had then, the fiber ends with that
  // std::system_error, which join() rethrows. Any thread: from another, the fiber is queued through
  // the loop's cross-thread queue and first runs at the loop's next
  // iteration (a lone loop must be running, or run later, for it to run).
  template <internal::Spawnable F>
  TaskFor<F> spawn(F&& fn, std::source_location where = std::source_location::current()) {
    return spawn(SpawnOptions{}, std::forward<F>(fn), where);
  }
  template <internal::Spawnable F>
  TaskFor<F> spawn(SpawnOptions options, F&& fn,
                   std::source_location where = std::source_location::current());
  // Any other arguments (spawn(f, 21), the std::thread habit): one compile
  // error that says to capture them in a lambda.
  template <class... Args>
  requires(!internal::kValidSpawn<Args...>) auto spawn(Args&&...) {
    internal::reject_spawn_arguments<Args...>();
    return Task<void>{};
  }

  // Spawns `fn`, runs the loop until it finishes, returns its value or
  // rethrows its exception (asyncio's run_until_complete). From one of the
  // loop's own fibers, the loop is running already: it spawns `fn` and
  // joins it (the caller parks meanwhile).
  // Throws: what `fn` throws; std::runtime_error if the loop stops or
  //         deadlocks first.
  template <class F>
  auto run_until_complete(F&& fn, std::source_location where = std::source_location::current()) {
    return spawn(SpawnOptions{}, std::forward<F>(fn), where).join();
  }

  // Runs until nothing can make progress, or until stop(). Nothing can make
  // progress when no fiber is ready and no callback, timer, fd waiter,
  // run_blocking() job or KeepAlive is pending. With nothing ready the loop blocks in
  // its poller (io_uring or epoll) until the next timer or event: an idle
  // loop uses no CPU.
  // Throws: std::logic_error when already running or called from another thread.
  void run();

  // Makes run() return after the current iteration. Callable from any thread;
  // wakes a loop blocked waiting for events. On a LoopGroup's loop, the
  // loop's thread then stops the whole group (LoopGroup::stop).
  void stop() noexcept;

  // Runs `fn` on the loop thread, between fibers, in the next iteration;
  // callbacks run in the order they were scheduled. A throwing callback goes
  // to the exception handler and does not stop the loop. On a loop that is
  // closing (being destroyed), `fn` is dropped unrun and the handle returned
  // is inactive.
  // Throws: std::logic_error from another thread (use call_soon_threadsafe).
  TimerHandle call_soon(std::function<void()> fn);
  // Runs `fn` once `delay` has passed: measured from the loop's timer clock,
  // never early, at most 20 us late (loop/internal/timer_clock.h), so a
  // call_at(now() + delay) made at the same moment may run up to 20 us
  // before it. As call_soon() otherwise, and throws the same.
  TimerHandle call_later(Duration delay, std::function<void()> fn);
  // (Any other duration converts saturating: to_duration.)
  template <OtherDuration D>
  TimerHandle call_later(D delay, std::function<void()> fn) {
    return call_later(fiberloop::to_duration(delay), std::move(fn));
  }
  // Runs `fn` once `when` has passed. Callbacks due at the same time run in
  // the order they were scheduled. As call_soon() otherwise, and throws the
  // same.
  TimerHandle call_at(TimePoint when, std::function<void()> fn);
  // Callable from any thread: queues `fn` to run on the loop thread and wakes
  // the loop at once if it is blocked waiting for events (an eventfd). A post
  // that reaches a closing loop is dropped: destroyed unrun, on the loop's
  // thread. Lock-free; allocates only when no recycled post is free.
  void call_soon_threadsafe(std::function<void()> fn);

  // Keeps run() (and run_until_complete, and a join from outside any fiber)
  // from deciding that nothing can make progress while it exists: for a loop
  // that waits on other threads to post work with call_soon_threadsafe().
  // Without one, a loop whose fibers all wait on such posts reports a
  // deadlock. Movable; may be made, moved and dropped on any thread; must not
  // outlive its Loop.
  class KeepAlive {
   public:
    KeepAlive(KeepAlive&& other) noexcept : parts_(std::exchange(other.parts_, nullptr)) {}
    KeepAlive& operator=(KeepAlive&& other) noexcept;
    ~KeepAlive();

   private:
    friend class Loop;
    explicit KeepAlive(internal::LoopParts* parts) noexcept : parts_(parts) {}
    internal::LoopParts* parts_;
  };
  // Any thread.
  KeepAlive keep_alive() noexcept;

  // Calls `fn` on the loop thread (as a callback, between fibers) in every
  // iteration in which `fd` is readable, until remove_reader(fd): asyncio's
  // selector callbacks, level-triggered. One reader callback per
  // fd; adding another replaces it. The fd stays the caller's; remove the
  // callback before closing it. A closing loop drops these callbacks (and
  // any added while it closes), as it drops call_soon's.
  // Throws: std::system_error naming the fd: EBADF if it is not open, EPERM
  //         for one the kernel cannot poll (a regular file, a directory, a
  //         device without poll support: on either backend), EEXIST for a
  //         fiberloop socket's fd; std::logic_error from another thread.
  void add_reader(int fd, std::function<void()> fn);
  // Removes the reader callback of `fd` (asyncio's remove_reader); call it
  // before closing the fd. Returns: whether one was registered (false for
  // an fd without one). Throws: std::logic_error from another thread.
  bool remove_reader(int fd);
  // As add_reader() and remove_reader(), for writability: `fn` runs in each
  // iteration in which `fd` is writable.
  void add_writer(int fd, std::function<void()> fn);
  bool remove_writer(int fd);

  // The loop's clock (steady_clock), read now.
  TimePoint now() const noexcept { return Clock::now(); }

  // Receives failures nobody observes: a detached fiber's exception, or one
  // whose Task was dropped unjoined. Default: one line on stderr naming the
  // fiber. Cancellations are not failures and are not reported. An empty
  // `handler` restores the default; a handler that throws is reported on
  // stderr and the loop goes on.
  // Throws: std::logic_error from another thread than the loop's.
  void set_exception_handler(std::function<void(std::exception_ptr, const FiberInfo&)> handler);

  // Counters since creation and what is alive now. With
  // `with_stack_high_water` (LoopStats::kWithStackHighWater) it also
  // measures LoopStats::stack_high_water, as stack_high_water() does.
  // Throws: std::logic_error from another thread.
  LoopStats stats(bool with_stack_high_water = false) const;

  // The backend this loop waits with: Backend::epoll or Backend::io_uring
  // (what LoopOptions::backend and FIBERLOOP_BACKEND chose). Any thread.
  Backend backend() const noexcept;

  // The deepest any live fiber has used its stack, in bytes (to the page):
  // for sizing StackOptions::size. Measured on request, one mincore(2) per
  // fiber; Loop::dump() shows each fiber's.
  // Throws: std::logic_error from another thread.
  std::size_t stack_high_water() const;

  // Writes one line per live fiber (id, name, state, what it waits on, where
  // it was spawned) and the loop's counters: for debugging a stuck program.
  // Throws: std::logic_error from another thread.
  void dump(std::ostream& out) const;

  // Prints dump() to stderr whenever the process receives `signo` (Go's
  // SIGQUIT traceback), at the loop's next iteration; the environment
  // variable FIBERLOOP_DUMP_ON_SIGQUIT=1 does this for SIGQUIT in every Loop.
  // The handler is process-wide and stays installed; a loop that is stalled
  // (a fiber running without yielding) prints once it yields: the stall
  // detector (LoopOptions::stall_threshold) covers that case.
  // Throws: std::system_error if sigaction fails; std::logic_error from
  //         another thread, or past 16 loops at once.
  void dump_on_signal(int signo);

 private:
  friend class LoopGroup;
  // Owned (a plain pointer, so that a ~Loop that refuses, by throwing,
  // leaves the loop whole): loop/internal/loop_parts.h.
  internal::LoopParts* parts_;
  internal::Scheduler* scheduler_;  // parts_->scheduler
};

template <internal::Spawnable F>
TaskFor<F> Loop::spawn(SpawnOptions options, F&& fn, std::source_location where) {
  using Fn = std::decay_t<F>;
  using R = typename internal::SpawnResult<F>::R;
  internal::FiberRecord* f = scheduler_->create_fiber(std::move(options), sizeof(Fn), alignof(Fn),
                                                      &internal::FiberBody<Fn, R>::run, where);
  try {
    ::new (f->callable) Fn(std::forward<F>(fn));  // in the record, or on the heap if big
  } catch (...) {
    scheduler_->discard_fiber(*f);
    throw;
  }
  scheduler_->start_fiber(*f);
  return Task<R>(f);
}

// spawn() on the calling thread's loop.
// Throws: std::logic_error if this thread has no Loop.
template <internal::Spawnable F>
TaskFor<F> spawn(F&& fn, std::source_location where = std::source_location::current()) {
  return internal::current_loop("spawn").spawn(std::forward<F>(fn), where);
}
template <internal::Spawnable F>
TaskFor<F> spawn(SpawnOptions options, F&& fn,
                 std::source_location where = std::source_location::current()) {
  return internal::current_loop("spawn").spawn(std::move(options), std::forward<F>(fn), where);
}
// Any other arguments: see Loop::spawn.
template <class... Args>
requires(!internal::kValidSpawn<Args...>) auto spawn(Args&&...) {
  internal::reject_spawn_arguments<Args...>();
  return Task<void>{};
}

// asyncio.run: creates a fresh Loop on this thread, runs `main` in a fiber
// until it finishes, closes the loop (cancelling and unwinding every fiber
// still alive, in bounded time: see ~Loop), and returns main's value or
// rethrows its exception.
//
//   int main() { return fiberloop::run([] { /* plain sequential code */ return 0; }); }
//
// Throws: what `main` throws; std::logic_error if this thread already has a Loop.
template <class F>
auto run(F&& main, LoopOptions options = {},
         std::source_location where = std::source_location::current())
    -> std::invoke_result_t<std::decay_t<F>> {
  Loop loop(std::move(options));
  return loop.run_until_complete(std::forward<F>(main), where);
}

}  // namespace fiberloop
