// Closing a loop: what ~Loop (and the end of run(main)) does, in bounded time.
//
// The policy, asyncio's for a closing loop made strict:
// - Pending callbacks and timers are dropped: destroyed, never run. So are
//   callbacks and timers scheduled while closing (call_soon returns an
//   inactive handle), and cross-thread posts, on this thread. So are
//   add_reader()/add_writer() callbacks, and those added while closing.
// - run_blocking() jobs not yet started are dropped, which wakes their
//   fibers to be cancelled with the rest (blocking_pool.cc); running ones
//   finish on their workers (waited for last), and their results are dropped.
//   Once LoopOptions::blocking_shutdown_timeout has passed (after the
//   grace), jobs whose fibers no longer wait are given up on: named on
//   stderr, their workers detached, their completions dropped on the
//   workers (blocking_pool.h, CompletionGate). A file operation that works
//   on its caller's memory is waited for, named once on stderr.
// - Every live fiber is cancelled, and Cancelled is delivered again at every
//   suspension point from then on, each time after one pass through the
//   ready queue, so that a fiber that catches it in a loop is still seen by
//   the run loop. Fibers spawned while closing are cancelled before they
//   run. Nothing waits: polls do not block, and no timer is waited for.
// - Interrupts still wait while an exception unwinds a fiber (a throw out of
//   a destructor would end the process), so a destructor's wait can complete:
//   for what is ready at once, and for a timer or an fd, within a grace of
//   kShutdownGrace from the start of the shutdown.
// - Likewise within the grace, a fiber waiting for another loop or thread
//   (counted as a remote wait) may be woken by it: that loop may owe it an
//   answer it cannot be interrupted before (a primitive's first use from
//   this loop, a condition variable's waiter taking its mutex back), and a
//   group's loops close together, answering each other meanwhile.
// - After kShutdownIterations iterations, or once nothing is ready and the
//   grace is over (at once, when nothing is pending that could wake a
//   fiber), the fibers still alive are abandoned: named in one report on
//   stderr, their stacks and records leaked (never freed under a live
//   frame), never resumed. Their Tasks' join() throws std::logic_error.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "loop/internal/format.h"
#include "loop/internal/loop_parts.h"

namespace fiberloop::internal {
namespace {
constexpr Duration kShutdownGrace = std::chrono::milliseconds(100);
}  // namespace

void LoopParts::shutdown() noexcept {
  Scheduler& s = scheduler;
  // Its own fiber, callback or post would return into freed memory.
  if (s.current_ != nullptr || running() || in_shutdown_) {
    std::fprintf(stderr,
                 "fiberloop: a Loop was destroyed from inside %s; call stop() there, and destroy "
                 "the loop after run() returns\n",
                 s.current_ != nullptr ? "one of its own fibers"
                                       : "one of its own callbacks or posts (its run() or "
                                         "shutdown is on the stack)");
    std::abort();
  }
  if (shut_down_) return;
  shut_down_ = true;
  in_shutdown_ = true;
  s.closing_ = true;
  closing_deadline_ = Clock::now() + kShutdownGrace;
  callbacks.discard();
  // add_reader()'s watches would keep the closing loop polling for its
  // whole grace (and, on a ready fd, spinning): they wake no fiber.
  reactor.drop_fd_callbacks();
  remote.drain(true);
  pool.drop_queued();
  s.all_.for_each([&s](FiberRecord& f) { s.cancel(f); });
  (void)remote.take_stop();
  (void)run(nullptr);
  if (!s.all_.empty()) s.abandon_remaining();
  // Jobs still running are waited for, with the queue served meanwhile: a
  // job may ask this loop something (closing a stream of this loop, letting
  // go of an operation parked here) and wait for the answer. What
  // call_on_loop_if_live() posted runs, here and below, and nothing after.
  // The posts dropped meanwhile are destroyed once the loop counts as gone:
  // one holding a stream of a loop closing at the same time would wait for
  // that loop's last drain, which may wait for this one's.
  std::vector<std::function<void()>> dropped;
  // After LoopOptions::blocking_shutdown_timeout, jobs whose callers no
  // longer wait are given up on; one that works on its caller's memory is
  // waited for (its fiber is abandoned, its stack kept), reported once.
  const TimePoint give_up = deadline_after(options.blocking_shutdown_timeout, Clock::now());
  bool reported_waiting = false;
  while (pool.outstanding() != 0) {
    remote.drain_keeping_dropped(dropped);  // their completions too
    if (pool.outstanding() == 0) break;
    if (Clock::now() >= give_up) {
      if (!pool.uses_caller_memory()) {
        give_up_on_jobs();
        break;
      }
      if (!reported_waiting) report_waiting_for_jobs();
      reported_waiting = true;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  pool.join();
  diagnostics.close_list_entry([&] { remote.drain_keeping_dropped(dropped); });
  dropped.clear();
  callbacks.discard();
  in_shutdown_ = false;
}

void LoopParts::give_up_on_jobs() noexcept {
  const std::string report = pool.describe_running();
  const std::size_t count = pool.outstanding();
  pool.abandon();
  std::fprintf(stderr,
               "fiberloop: the loop's shutdown gave up on %zu worker %s still running after "
               "LoopOptions::blocking_shutdown_timeout (blocked for ever? an open() of a FIFO "
               "without its other end, a read of a pipe nobody writes); %s detached, and %s "
               "result is dropped when it ends:\n%s",
               count, count == 1 ? "job" : "jobs",
               count == 1 ? "its worker is" : "their workers are", count == 1 ? "its" : "each",
               report.c_str());
}

void LoopParts::report_waiting_for_jobs() noexcept {
  const std::string report = pool.describe_running();
  std::fprintf(stderr,
               "fiberloop: the loop's shutdown keeps waiting for %zu worker %s still running after "
               "LoopOptions::blocking_shutdown_timeout: a file operation works on its caller's "
               "memory, so the loop cannot let go of it (a write to a pipe or FIFO nobody reads? "
               "open those O_NONBLOCK and use a stream):\n%s",
               pool.outstanding(), pool.outstanding() == 1 ? "job" : "jobs", report.c_str());
}

void Scheduler::abandon_remaining() noexcept {
  std::size_t count = 0;
  all_.for_each([&](const FiberRecord&) { ++count; });
  std::ostringstream report;
  report << "fiberloop: the loop's shutdown abandoned " << count
         << (count == 1 ? " fiber" : " fibers")
         << " that would not end after cancellation (caught Cancelled and waited again, or "
            "waited in a destructor for what never came); their stacks are leaked, not freed "
            "under a live frame:\n";
  const TimePoint now = Clock::now();
  all_.for_each([&](const FiberRecord& f) { describe_fiber_line(report, f, now); });
  std::fputs(report.str().c_str(), stderr);
  while (!ready_.empty()) ready_.pop_front();
  all_.for_each([](FiberRecord& f) {
    static_cast<ListHook<AllFibersTag>&>(f).unlink();
    f.state = FiberState::kAbandoned;
    f.done_flag.store(true, std::memory_order_release);  // shared primitives pass it by
    // Joins from other threads end (with the fiber abandoned); local ones
    // belong to fibers abandoned too.
    IntrusiveList<DoneWaiter> keep;
    while (!f.done_waiters.empty()) {
      DoneWaiter& w = f.done_waiters.pop_front();
      if (w.on_done != nullptr) {
        w.on_done(w);
      } else {
        keep.push_back(w);
      }
    }
    while (!keep.empty()) f.done_waiters.push_back(keep.pop_front());
  });
  abandoned_fibers_ = true;
}

}  // namespace fiberloop::internal
