// Loop::dump and stats: what every fiber is doing, for a human debugging a
// stuck program (Go prints the like on SIGQUIT).
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
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>

#include "fiber/internal/stack_pool.h"
#include "loop/internal/format.h"
#include "loop/internal/loop_parts.h"
#include "loop/loop.h"

namespace fiberloop::internal {

// (Appended piece by piece: GCC 12 at -O3 warns, wrongly, of an overlapping
// copy in `" " + std::to_string(n)`, which a -Werror build cannot take.)
namespace {

std::string hex_address(std::int64_t address) {
  char text[2 + 16 + 1];
  std::snprintf(text, sizeof text, "0x%llx",
                static_cast<unsigned long long>(static_cast<std::uint64_t>(address)));
  return text;
}

}  // namespace

std::string describe_wait(WaitKind kind, std::int64_t d, const char* call, TimePoint now) {
  std::string what = kWaitKindNames[static_cast<std::size_t>(kind)];
  switch (kind) {
    case WaitKind::kJoin: {
      if (d == 0) return what.append(" fibers");
      const std::uint64_t loop = joined_loop_tag(d);
      what.append(" fiber ").append(std::to_string(joined_fiber_id(d)));
      if (loop == kJoinedElsewhere) return what.append(" of another loop");
      if (loop != 0) what.append(" of loop ").append(std::to_string(loop - 1));
      return what;
    }
    case WaitKind::kSleep: {
      const TimePoint until{Duration(d)};
      if (until == kNever) return what.append(" forever");
      if (until <= now) return what.append(", due");
      return what.append(", ").append(format_duration(until - now)).append(" to go");
    }
    case WaitKind::kRead:
    case WaitKind::kWrite:
    case WaitKind::kTurn:
      what.append(" ").append(std::to_string(d));
      if (call != nullptr) what.append(" in ").append(call);
      return what;
    case WaitKind::kEvent:
    case WaitKind::kMutex:
    case WaitKind::kConditionVariable:
    case WaitKind::kSemaphore:
    case WaitKind::kWaitGroup:
    case WaitKind::kChannel:
    case WaitKind::kFuture:
      // The primitive's address (of its wait state inside it), the same for
      // every fiber that waits on it; none for a select.
      if (d != 0) what.append(" ").append(hex_address(d));
      return what;
    default:
      return what;
  }
}

namespace {

// Loops that dump on a signal. The handler runs on any thread, so it only
// flags them (atomics) and wakes them (an eventfd write).
constexpr std::size_t kMaxDumpingLoops = 16;
std::array<std::atomic<RemoteQueue*>, kMaxDumpingLoops> dumping_loops{};
// Handlers running now, on any thread: a loop leaving the table waits for
// them, since one may have read its slot just before it was cleared.
std::atomic<int> dump_handlers_running{0};

void on_dump_signal(int) {
  const int saved_errno = errno;
  dump_handlers_running.fetch_add(1, std::memory_order_seq_cst);
  for (auto& slot : dumping_loops) {
    if (RemoteQueue* remote = slot.load(std::memory_order_seq_cst)) remote->request_dump();
  }
  dump_handlers_running.fetch_sub(1, std::memory_order_release);
  errno = saved_errno;
}

}  // namespace

void describe_fiber_line(std::ostream& out, const FiberRecord& f, TimePoint now) {
  out << "  " << describe_fiber(f);
  switch (f.state) {
    case FiberState::kReady:
      out << (f.context == nullptr ? " ready (not started)" : " ready");
      break;
    case FiberState::kParked:
      out << " parked " << format_duration(now - f.parked_at) << ": "
          << describe_wait(f.waiting_on, f.wait_detail, f.wait_call, now);
      break;
    default:
      out << " " << kFiberStateNames[static_cast<std::size_t>(f.state)];
  }
  if (f.pending & FiberRecord::kCancel) out << ", cancel pending";
  if (f.pending & FiberRecord::kTimeout) out << ", timed out";
  if (f.stack) out << ", stack used " << StackPool::high_water(f.stack) / 1024 << " KiB";
  if (f.spawned_at.line() != 0) {
    out << " (spawned at " << f.spawned_at.file_name() << ":" << f.spawned_at.line() << ")";
  }
  out << "\n";
}

LoopStats LoopParts::stats() const noexcept {
  const Scheduler& s = scheduler;
  LoopStats out;
  out.fibers_created = s.created_;
  out.fibers_finished = s.finished_;
  out.fibers_alive = s.created_ - s.finished_;
  out.switches = s.switches_.get();
  out.iterations = s.iterations_.get();
  const StackPoolStats pool_stats = s.stacks_.stats();
  out.stacks_outstanding = pool_stats.outstanding;
  out.stacks_pooled = pool_stats.pooled;
  out.timers_pending = timers.size();
  out.callbacks_run = callbacks.run_count();
  out.polls = reactor.poller().polls();
  out.time_blocked = reactor.poller().time_blocked();
  out.blocking_jobs = pool.outstanding();
  out.fd_waiters = reactor.waiters();
  out.fds_registered = reactor.poller().registered();
  return out;
}

void LoopParts::dump(std::ostream& out) const {
  const LoopStats s = stats();
  out << "fiberloop: ";
  if (group != nullptr) out << "loop " << index << " of its group: ";
  out << s.fibers_alive << " fibers alive (" << s.fibers_created << " created, "
      << s.fibers_finished << " finished); " << s.switches << " switches, " << s.iterations
      << " iterations, " << s.polls << " polls; " << s.timers_pending << " timers, " << s.fd_waiters
      << " fd waiters, " << s.blocking_jobs << " blocking jobs; " << s.stacks_outstanding
      << " stacks in use, " << s.stacks_pooled << " pooled\n";
  const TimePoint now = Clock::now();
  scheduler.all_.for_each([&](const FiberRecord& f) { describe_fiber_line(out, f, now); });
}

std::string LoopParts::deadlock_report(const FiberRecord& awaited) const {
  std::ostringstream report;
  report << "fiberloop: deadlock: every fiber is parked and nothing can wake them (no timer, fd, "
            "callback, run_blocking job or KeepAlive is pending, and no thread but fiberloop's "
            "own exists to post one) while waiting for "
         << describe_fiber(awaited) << "; the parked fibers:\n";
  const TimePoint now = Clock::now();
  scheduler.all_.for_each([&](const FiberRecord& f) { describe_fiber_line(report, f, now); });
  return report.str();
}

std::size_t LoopParts::stack_high_water() const {
  std::size_t deepest = 0;
  scheduler.all_.for_each([&](const FiberRecord& f) {
    const std::size_t used = StackPool::high_water(f.stack);
    if (used > deepest) deepest = used;
  });
  return deepest;
}

void forget_dump_signal(RemoteQueue& remote) noexcept {
  for (auto& slot : dumping_loops) {
    RemoteQueue* expected = &remote;
    slot.compare_exchange_strong(expected, nullptr, std::memory_order_seq_cst);
  }
  // Pairs with the handler's count and load (Dekker): a handler either sees
  // the cleared slot or is counted here.
  while (dump_handlers_running.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
}

}  // namespace fiberloop::internal

namespace fiberloop {

void Loop::dump_on_signal(int signo) {
  scheduler_->check_thread("Loop::dump_on_signal");
  struct sigaction sa {};
  sa.sa_handler = &internal::on_dump_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(signo, &sa, nullptr) != 0) {
    const int err = errno;  // before the message is built
    throw std::system_error(err, std::generic_category(),
                            "Loop::dump_on_signal: signal " + std::to_string(signo) +
                                " cannot be caught (SIGKILL, SIGSTOP and numbers out of range "
                                "cannot); pick another, such as SIGQUIT or SIGUSR1");
  }
  internal::RemoteQueue* remote = &parts_->remote;
  for (auto& slot : internal::dumping_loops) {
    if (slot.load(std::memory_order_relaxed) == remote) return;  // already registered
  }
  for (auto& slot : internal::dumping_loops) {
    internal::RemoteQueue* expected = nullptr;
    if (slot.compare_exchange_strong(expected, remote, std::memory_order_acq_rel)) return;
  }
  throw std::logic_error(
      "Loop::dump_on_signal: 16 loops already dump on signals; destroy one first, or call "
      "Loop::dump() from a fiber that waits for the signal (wait_signal)");
}

}  // namespace fiberloop
