// The stall detector: see loop/internal/stall_watchdog.h.
#include "loop/internal/stall_watchdog.h"

#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "loop/internal/format.h"
#include "loop/internal/loop_parts.h"
#include "loop/internal/own_thread.h"

namespace fiberloop::internal {
namespace {

void on_stall_signal(int) {
  const int saved_errno = errno;
  if (Scheduler* scheduler = Scheduler::current()) {
    scheduler->parts().diagnostics.report_stall_from_signal();
  }
  errno = saved_errno;
}

// Installs the handler once per process. Keeps SA_RESTART so that system
// calls the stalled code was in go on.
void install_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = &on_stall_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ::sigaction(StallWatchdog::kSignal, &sa, nullptr);
  });
}

}  // namespace

StallWatchdog::StallWatchdog(Diagnostics& diagnostics, Duration threshold)
    : diagnostics_(diagnostics), threshold_(threshold), loop_thread_(::pthread_self()) {
  install_handler();
  // The signal must reach the loop's thread, which a LoopGroup starts with
  // every signal blocked (the report never came there).
  sigset_t mine;
  sigemptyset(&mine);
  sigaddset(&mine, kSignal);
  ::pthread_sigmask(SIG_UNBLOCK, &mine, nullptr);
  // backtrace() loads libgcc on first use (and allocates): do that here, not
  // in the signal handler.
  void* frames[4];
  ::backtrace(frames, 4);
  thread_ = start_own_thread("the stall watchdog", "fl-stall-watch", [this] { watch(); });
}

StallWatchdog::~StallWatchdog() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void StallWatchdog::watch() {
  // Four samples per threshold: a stall is reported between 1x and 1.25x
  // the threshold after it began. A threshold of hours is looked at hourly.
  const Duration tick =
      std::clamp<Duration>(threshold_ / 4, std::chrono::milliseconds(1), std::chrono::hours(1));
  std::uint64_t last_beat = diagnostics_.heartbeat();
  TimePoint moved_at = Clock::now();
  bool reported = false;
  // The loop moved (or the watchdog stops): a reported stall is over.
  auto moved = [&](TimePoint now) {
    if (reported) {
      std::fprintf(stderr, "fiberloop: stall over: the loop thread ran %s without yielding\n",
                   format_duration(now - moved_at).c_str());
    }
    moved_at = now;
    reported = false;
  };
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, tick, [this] { return stopping_; })) {
    const TimePoint now = Clock::now();
    const std::uint64_t beat = diagnostics_.heartbeat();
    if (beat != last_beat || diagnostics_.resting()) {
      last_beat = beat;
      moved(now);
    } else if (!reported && now - moved_at >= threshold_) {
      reported = true;
      diagnostics_.request_stall_report(now - moved_at, beat);
      ::pthread_kill(loop_thread_, kSignal);
    }
  }
  moved(Clock::now());
}

}  // namespace fiberloop::internal
