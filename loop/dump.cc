// Loop::dump: what every fiber is doing, for a human debugging a stuck
// program (Go prints the like on SIGQUIT).
//
//   fiberloop: 3 fibers alive (5 created, 2 finished); 41 switches, 12 iterations, ...
//     fiber 1 'main' running (spawned at app.cc:10)
//     fiber 4 'worker' parked 1.2 s: waiting on a Mutex (spawned at app.cc:22)
//     fiber 5 'conn' parked 30 ms: reading fd 9 (spawned at app.cc:40)
//
// How long a fiber has been parked is measured from the loop's coarse clock,
// read at every poll; after a stretch of pure computation (no I/O, no
// timers) it can read long by that stretch.
#include <signal.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ostream>
#include <string>
#include <system_error>

#include "loop/internal/loop_core.h"
#include "loop/loop.h"

namespace fiberloop::internal {
namespace {

const char* describe(WaitKind kind) {
  switch (kind) {
    case WaitKind::kJoin:
      return "joining another fiber";
    case WaitKind::kSleep:
      return "sleeping";
    case WaitKind::kRead:
      return "waiting to read an fd";
    case WaitKind::kWrite:
      return "waiting to write an fd";
    case WaitKind::kEvent:
      return "waiting on an Event";
    case WaitKind::kMutex:
      return "waiting on a Mutex";
    case WaitKind::kConditionVariable:
      return "waiting on a ConditionVariable";
    case WaitKind::kSemaphore:
      return "waiting on a Semaphore";
    case WaitKind::kWaitGroup:
      return "waiting on a WaitGroup";
    case WaitKind::kChannel:
      return "waiting on a Channel";
    case WaitKind::kFuture:
      return "waiting on a Future";
    case WaitKind::kBlockingJob:
      return "waiting for a run_blocking job";
    case WaitKind::kNothing:
    case WaitKind::kOther:
      break;
  }
  return "parked";
}

// "850 ms", "12.5 s", "3 min".
std::string human(Duration d) {
  const double ms = std::chrono::duration<double, std::milli>(d).count();
  char buf[32];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%.0f ms", ms);
  } else if (ms < 120'000) {
    std::snprintf(buf, sizeof buf, "%.1f s", ms / 1000);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f min", ms / 60'000);
  }
  return buf;
}

// What a parked fiber waits for, with the detail its park site left.
std::string describe(const FiberRecord& f, TimePoint now) {
  const std::int64_t d = f.wait_detail;
  switch (f.waiting_on) {
    case WaitKind::kJoin:
      return d != 0 ? "joining fiber " + std::to_string(d) : "joining fibers";
    case WaitKind::kSleep: {
      const TimePoint until{Duration(d)};
      if (until == TimePoint::max()) return "sleeping forever";
      return until > now ? "sleeping, " + human(until - now) + " to go" : "sleeping, due";
    }
    case WaitKind::kRead:
      return "reading fd " + std::to_string(d);
    case WaitKind::kWrite:
      return "writing fd " + std::to_string(d);
    default:
      return describe(f.waiting_on);
  }
}

// Loops that dump on a signal. The handler runs on any thread, so it only
// flags them (atomics) and wakes them (an eventfd write).
constexpr std::size_t kMaxDumpingLoops = 16;
std::array<std::atomic<LoopCore*>, kMaxDumpingLoops> dumping_loops{};

void on_dump_signal(int) {
  const int saved_errno = errno;
  for (auto& slot : dumping_loops) {
    if (LoopCore* core = slot.load(std::memory_order_acquire)) core->request_dump();
  }
  errno = saved_errno;
}

}  // namespace

void LoopCore::request_dump() noexcept {
  dump_requested_.store(true, std::memory_order_relaxed);
  notify_remote();  // the scheduler looks at the next iteration, and epoll wakes
}

void forget_dump_signal(LoopCore& core) noexcept {
  for (auto& slot : dumping_loops) {
    LoopCore* expected = &core;
    slot.compare_exchange_strong(expected, nullptr, std::memory_order_acq_rel);
  }
}

void LoopCore::dump(std::ostream& out) const {
  const LoopStats s = stats();
  const TimePoint now = Clock::now();
  out << "fiberloop: " << s.fibers_alive << " fibers alive (" << s.fibers_created << " created, "
      << s.fibers_finished << " finished); " << s.switches << " switches, " << s.iterations
      << " iterations, " << s.polls << " polls; " << s.timers_pending << " timers, " << s.fd_waiters
      << " fd waiters, " << s.blocking_jobs << " blocking jobs; " << s.stacks_outstanding
      << " stacks in use, " << s.stacks_pooled << " pooled\n";
  all_.for_each([&](const FiberRecord& f) { describe_fiber_line(out, f, now); });
}

std::string describe_fiber(const FiberRecord& f) {
  std::string s = "fiber " + std::to_string(f.id);
  if (!f.name.empty()) s += " '" + f.name + "'";
  return s;
}

void describe_fiber_line(std::ostream& out, const FiberRecord& f, TimePoint now) {
  out << "  " << describe_fiber(f);
  switch (f.state) {
    case FiberState::kRunning:
      out << " running";
      break;
    case FiberState::kReady:
      out << (f.context == nullptr ? " ready (not started)" : " ready");
      break;
    case FiberState::kParked:
      out << " parked " << human(now - f.parked_at) << ": " << describe(f, now);
      break;
    case FiberState::kFinished:
      out << " finished";
      break;
    case FiberState::kAbandoned:
      out << " abandoned";
      break;
  }
  if (f.pending & FiberRecord::kCancel) out << ", cancel pending";
  if (f.pending & FiberRecord::kTimeout) out << ", timed out";
  if (f.stack) out << ", stack used " << StackPool::high_water(f.stack) / 1024 << " KiB";
  if (f.spawned_at.line() != 0) {
    out << " (spawned at " << f.spawned_at.file_name() << ":" << f.spawned_at.line() << ")";
  }
  out << "\n";
}

std::size_t LoopCore::stack_high_water() const {
  std::size_t deepest = 0;
  all_.for_each([&](const FiberRecord& f) {
    const std::size_t used = StackPool::high_water(f.stack);
    if (used > deepest) deepest = used;
  });
  return deepest;
}

}  // namespace fiberloop::internal

namespace fiberloop {

std::size_t Loop::stack_high_water() const {
  core_->check_thread("Loop::stack_high_water");
  return core_->stack_high_water();
}

void Loop::dump(std::ostream& out) const {
  core_->check_thread("Loop::dump");
  core_->dump(out);
}

void Loop::dump_on_signal(int signo) {
  core_->check_thread("Loop::dump_on_signal");
  struct sigaction sa {};
  sa.sa_handler = &internal::on_dump_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(signo, &sa, nullptr) != 0) {
    throw std::system_error(errno, std::generic_category(),
                            "Loop::dump_on_signal: signal " + std::to_string(signo) +
                                " cannot be caught (SIGKILL, SIGSTOP and numbers out of range "
                                "cannot); pick another, such as SIGQUIT or SIGUSR1");
  }
  for (auto& slot : internal::dumping_loops) {
    if (slot.load(std::memory_order_relaxed) == core_.get()) return;  // already registered
  }
  for (auto& slot : internal::dumping_loops) {
    internal::LoopCore* expected = nullptr;
    if (slot.compare_exchange_strong(expected, core_.get(), std::memory_order_acq_rel)) return;
  }
  throw std::logic_error(
      "Loop::dump_on_signal: 16 loops already dump on signals; destroy one first, or call "
      "Loop::dump() from a fiber that waits for the signal (wait_signal)");
}

}  // namespace fiberloop
