// The stall detector: see loop/internal/stall_watchdog.h.
#include "loop/internal/stall_watchdog.h"

#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "loop/internal/loop_core.h"
#include "loop/internal/own_thread.h"

namespace fiberloop::internal {
namespace {

void on_stall_signal(int) {
  const int saved_errno = errno;
  if (LoopCore* core = LoopCore::current()) core->report_stall_from_signal();
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

long long to_ms(Duration d) {
  return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

}  // namespace

StallWatchdog::StallWatchdog(LoopCore& core, Duration threshold)
    : core_(core), threshold_(threshold), loop_thread_(::pthread_self()) {
  install_handler();
  // backtrace() loads libgcc on first use (and allocates): do that here, not
  // in the signal handler.
  void* frames[4];
  ::backtrace(frames, 4);
  thread_ = start_own_thread([this] { watch(); });
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
  std::uint64_t last_beat = core_.heartbeat();
  TimePoint moved_at = Clock::now();
  bool reported = false;
  // The loop moved (or the watchdog stops): a reported stall is over.
  auto moved = [&](TimePoint now) {
    if (reported) {
      std::fprintf(stderr, "fiberloop: stall over: the loop thread ran %lld ms without yielding\n",
                   to_ms(now - moved_at));
    }
    moved_at = now;
    reported = false;
  };
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, tick, [this] { return stopping_; })) {
    const TimePoint now = Clock::now();
    const std::uint64_t beat = core_.heartbeat();
    if (beat != last_beat || core_.resting()) {
      last_beat = beat;
      moved(now);
    } else if (!reported && now - moved_at >= threshold_) {
      reported = true;
      core_.request_stall_report(now - moved_at, beat);
      ::pthread_kill(loop_thread_, kSignal);
    }
  }
  moved(Clock::now());
}

void LoopCore::request_stall_report(Duration so_far, std::uint64_t beat) noexcept {
  stall_so_far_ms_.store(to_ms(so_far), std::memory_order_relaxed);
  stall_beat_.store(beat, std::memory_order_relaxed);
  stall_report_requested_.store(true, std::memory_order_release);
}

// On the loop thread, in a signal handler: no allocation, no locks. The
// message is formatted on the stack; snprintf with these conversions does
// not allocate in glibc.
void LoopCore::report_stall_from_signal() noexcept {
  if (!stall_report_requested_.exchange(false, std::memory_order_acquire)) return;
  // The stall ended between the watchdog's look and this signal: no report.
  if (heartbeat() != stall_beat_.load(std::memory_order_relaxed) || resting()) return;
  char who[512];
  if (const FiberRecord* f = current_) {
    std::snprintf(who, sizeof who, "fiber %llu '%s' (spawned at %s:%u)",
                  static_cast<unsigned long long>(f->id), f->name.c_str(),
                  f->spawned_at.file_name(), static_cast<unsigned>(f->spawned_at.line()));
  } else if (in_callback_.load(std::memory_order_relaxed)) {
    std::snprintf(who, sizeof who, "a loop callback (call_soon/call_later/call_at, add_reader)");
  } else {
    std::snprintf(who, sizeof who, "the scheduler itself");
  }
  char line[1024];
  const int n = std::snprintf(
      line, sizeof line,
      "fiberloop: stall: %s has run %lld ms without yielding (LoopOptions::stall_threshold "
      "%lld ms); the loop thread's backtrace:\n",
      who, static_cast<long long>(stall_so_far_ms_.load(std::memory_order_relaxed)),
      to_ms(options_.stall_threshold));
  if (n > 0) {
    [[maybe_unused]] ssize_t w = ::write(
        STDERR_FILENO, line, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1));
  }
  void* frames[64];
  const int depth = ::backtrace(frames, 64);
  ::backtrace_symbols_fd(frames, depth, STDERR_FILENO);
}

}  // namespace fiberloop::internal
