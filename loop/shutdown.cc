// Closing a loop: what ~Loop (and the end of run(main)) does, in bounded time.
//
// The policy, asyncio's for a closing loop made strict:
// - Pending callbacks and timers are dropped: destroyed, never run. So are
//   callbacks and timers scheduled while closing (call_soon returns an
//   inactive handle), and cross-thread posts, on this thread.
// - run_blocking() jobs not yet started are dropped; running ones finish on
//   their workers (joined last), and their results are dropped.
// - Every live fiber is cancelled, and Cancelled is delivered again at every
//   suspension point from then on, each time after one pass through the
//   ready queue, so that a fiber that catches it in a loop is still seen by
//   the scheduler. Fibers spawned while closing are cancelled before they
//   run. Nothing waits: polls do not block, and no timer is waited for.
// - Interrupts still wait while an exception unwinds a fiber (a throw out of
//   a destructor would end the process), so a destructor's wait can complete
//   if what it waits for is ready.
// - After kShutdownIterations iterations, or as soon as nothing is ready,
//   the fibers still alive are abandoned: named in one report on stderr,
//   their stacks and records leaked (never freed under a live frame), never
//   resumed. Their Tasks' join() throws std::logic_error.
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "loop/internal/loop_core.h"

namespace fiberloop::internal {

void LoopCore::shutdown() noexcept {
  if (current_ != nullptr) {
    std::fprintf(stderr, "fiberloop: a Loop was destroyed from inside one of its own fibers\n");
    std::abort();
  }
  closing_ = true;
  discard_callbacks();
  drop_remote();
  if (pool_) pool_->drop_queued();
  all_.for_each([this](FiberRecord& f) { cancel(f); });
  stop_requested_.store(false, std::memory_order_relaxed);
  run_scheduler(nullptr);
  if (!all_.empty()) abandon_remaining();
  pool_.reset();  // waits for jobs already running; their completions are dropped below
  drop_remote();
  discard_callbacks();
}

void LoopCore::drop_remote() noexcept {
  // Destroyed on this thread with the loop closing: what a post holds may
  // call call_soon() from its destructor (a Promise does), which now drops
  // the callback instead of re-entering the loop. Repeated until no post is
  // left, as destroying one may post another.
  for (;;) {
    std::vector<std::function<void()>> posted;
    {
      std::lock_guard lock(remote_mutex_);
      posted.swap(remote_);
    }
    if (posted.empty()) return;
  }
}

void LoopCore::abandon_remaining() noexcept {
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
    static_cast<FiberRecord::WaitHook&>(f).unlink();
    f.state = FiberState::kAbandoned;
  });
  leaked_fibers_ = true;
}

}  // namespace fiberloop::internal
