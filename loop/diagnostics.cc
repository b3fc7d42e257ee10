// Diagnostics: the stall detector's view of the loop, and the list of every
// loop for debuggers.
#include "loop/internal/diagnostics.h"

#include <execinfo.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>

#include "loop/internal/format.h"
#include "loop/internal/loop_parts.h"
#include "loop/internal/stall_watchdog.h"

namespace fiberloop::internal {

Diagnostics* debug_loop_list = nullptr;

// The list behind debug_loop_list, under its lock.
struct DebugList {
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static void add(Diagnostics* d) {
    std::lock_guard lock(mutex());
    d->debug_next_ = debug_loop_list;
    debug_loop_list = d;
  }
  static void remove(Diagnostics* d) {
    std::lock_guard lock(mutex());
    for (Diagnostics** p = &debug_loop_list; *p != nullptr; p = &(*p)->debug_next_) {
      if (*p == d) {
        *p = d->debug_next_;
        return;
      }
    }
  }
};

// In a fork()'s child, where only the forking thread runs, the lock is made
// afresh: another thread (a cross-loop post) may have held it at the fork.
[[maybe_unused]] const int debug_list_fork_handled =
    ::pthread_atfork(nullptr, nullptr, [] { new (&DebugList::mutex()) std::mutex; });

namespace {

// The stall threshold: LoopOptions', else FIBERLOOP_STALL_THRESHOLD_MS's.
Duration stall_threshold_from(Duration threshold) {
  if (threshold != Duration::zero()) return threshold;
  const char* ms = std::getenv("FIBERLOOP_STALL_THRESHOLD_MS");
  if (ms == nullptr) return threshold;
  char* end = nullptr;
  const long value = std::strtol(ms, &end, 10);
  if (end == ms || *end != '\0' || value < 0) {
    std::fprintf(stderr,
                 "fiberloop: FIBERLOOP_STALL_THRESHOLD_MS='%s' is not a number of milliseconds; "
                 "the stall detector stays off\n",
                 ms);
    return threshold;
  }
  return std::chrono::milliseconds(value);
}

long long to_ms(Duration d) {
  return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

}  // namespace

Diagnostics::Diagnostics(LoopParts& parts, Duration threshold)
    : parts_(parts),
      threshold_(stall_threshold_from(threshold)),
      debug_scheduler_(&parts.scheduler),
      debug_lwp_(static_cast<long>(::gettid())) {
  if (threshold_ > Duration::zero()) watchdog_ = std::make_unique<StallWatchdog>(*this, threshold_);
  DebugList::add(this);  // nothing throws from here on
}

Diagnostics::~Diagnostics() {
  watchdog_.reset();
  DebugList::remove(this);
}

bool scheduler_is_live(const Scheduler* scheduler) noexcept {
  std::lock_guard lock(DebugList::mutex());
  for (const Diagnostics* p = debug_loop_list; p != nullptr; p = p->debug_next_) {
    if (p->debug_scheduler_ == scheduler) return true;
  }
  return false;
}

bool scheduler_is_live(const Scheduler* scheduler, std::uint64_t serial) noexcept {
  std::lock_guard lock(DebugList::mutex());
  for (const Diagnostics* p = debug_loop_list; p != nullptr; p = p->debug_next_) {
    if (p->debug_scheduler_ == scheduler) return scheduler->serial() == serial;
  }
  return false;
}

PostOutcome post_if_live(Scheduler* scheduler, std::uint64_t serial, RemoteItem& item) noexcept {
  std::lock_guard lock(DebugList::mutex());
  for (const Diagnostics* p = debug_loop_list; p != nullptr; p = p->debug_next_) {
    if (p->debug_scheduler_ != scheduler) continue;
    if (serial != 0 && scheduler->serial() != serial) return PostOutcome::kGone;
    if (p->refuses_posts_) return PostOutcome::kClosing;
    scheduler->post(item);
    return PostOutcome::kPosted;
  }
  return PostOutcome::kGone;
}

bool refusing_posts(const Scheduler* scheduler, std::uint64_t serial) noexcept {
  std::lock_guard lock(DebugList::mutex());
  for (const Diagnostics* p = debug_loop_list; p != nullptr; p = p->debug_next_) {
    if (p->debug_scheduler_ != scheduler) continue;
    return p->refuses_posts_ && (serial == 0 || scheduler->serial() == serial);
  }
  return false;
}

void Diagnostics::refuse_posts() noexcept {
  std::lock_guard lock(DebugList::mutex());
  refuses_posts_ = true;
}

void Diagnostics::unlist() noexcept { DebugList::remove(this); }

std::uint64_t Diagnostics::heartbeat() const noexcept {
  return parts_.scheduler.progress() + parts_.callbacks.run_count();
}

bool Diagnostics::resting() const noexcept {
  return !running_.load(std::memory_order_relaxed) || parts_.remote.polling();
}

void Diagnostics::request_stall_report(Duration so_far, std::uint64_t beat) noexcept {
  stall_so_far_ms_.store(to_ms(so_far), std::memory_order_relaxed);
  stall_beat_.store(beat, std::memory_order_relaxed);
  stall_report_requested_.store(true, std::memory_order_release);
}

// On the loop thread, in a signal handler: no allocation, no locks. The
// message is formatted on the stack; snprintf with these conversions does
// not allocate in glibc.
void Diagnostics::report_stall_from_signal() noexcept {
  if (!stall_report_requested_.exchange(false, std::memory_order_acquire)) return;
  // The stall ended between the watchdog's look and this signal: no report.
  if (heartbeat() != stall_beat_.load(std::memory_order_relaxed) || resting()) return;
  char who[512];
  if (const FiberRecord* f = parts_.scheduler.running()) {
    const std::size_t n = format_fiber(who, sizeof who, f->id, f->name);
    std::snprintf(who + n, sizeof who - n, " (spawned at %s:%u)", f->spawned_at.file_name(),
                  static_cast<unsigned>(f->spawned_at.line()));
  } else if (parts_.callbacks.in_callback()) {
    std::snprintf(who, sizeof who, "a loop callback (call_soon/call_later/call_at, add_reader)");
  } else {
    std::snprintf(who, sizeof who, "the scheduler itself");
  }
  char so_far[32], threshold[32];
  format_duration(so_far, sizeof so_far,
                  std::chrono::milliseconds(stall_so_far_ms_.load(std::memory_order_relaxed)));
  format_duration(threshold, sizeof threshold, threshold_);
  char line[1024];
  const int n = std::snprintf(line, sizeof line,
                              "fiberloop: stall: %s has run %s without yielding "
                              "(LoopOptions::stall_threshold %s); the loop thread's backtrace:\n",
                              who, so_far, threshold);
  if (n > 0) {
    [[maybe_unused]] ssize_t w = ::write(
        STDERR_FILENO, line, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof line - 1));
  }
  void* frames[64];
  const int depth = ::backtrace(frames, 64);
  ::backtrace_symbols_fd(frames, depth, STDERR_FILENO);
}

}  // namespace fiberloop::internal
