// The scheduler core: how fibers are spawned, switched, parked, woken and ended.
//
// Invariants (checked where they can break, in every build):
// - Every fiber is in exactly one state: kRunning (it is current_), kReady (in
//   ready_ exactly once), kParked (nowhere in ready_; a wait list
//   may hold a node on its stack, unlinked by the fiber itself), kFinished (stack released, not in
//   all_), or kAbandoned (left by a shutdown: in no list, never resumed).
// - At most one fiber runs; while the scheduler's own code runs (on the
//   thread's stack), current_ is null.
// - budget_ <= ready_.size(): fibers leave ready_ only by being picked to run.
//   An iteration runs the budget_ fibers that were ready when it began; a
//   fiber made ready during it runs in the next one.
// - Fibers switch directly to the next ready fiber; control returns to the
//   run loop only when the iteration's budget is spent and the run loop has
//   work (LoopParts::needs_scheduler()), or when nothing is ready.
// - A fiber's record lives while refs > 0: one ref for the running fiber
//   (dropped after its stack is released), one for its Task handle.
#include "loop/internal/scheduler.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "fiber/internal/overflow_guard.h"
#include "fiber/internal/stack_pool.h"
#include "loop/errors.h"
#include "loop/internal/format.h"
#include "loop/internal/loop_parts.h"
#include "loop/internal/record_pool.h"
#include "loop/internal/thread_pool.h"
#include "loop/loop.h"

namespace fiberloop::internal {

thread_local constinit int tls_sync_locks_held __attribute__((tls_model("initial-exec"))) = 0;
thread_local constinit Scheduler* tls_scheduler __attribute__((tls_model("initial-exec"))) =
    nullptr;

namespace {

// Raises the soft RLIMIT_NOFILE to the hard limit, once per process (as Go
// does), so that ten thousand connections work without tuning.
void raise_fd_limit() noexcept {
  static const bool done = [] {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
      r.rlim_cur = r.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &r);
    }
    return true;
  }();
  (void)done;
}

std::uint64_t next_serial() noexcept {
  static std::atomic<std::uint64_t> serials{1};
  return serials.fetch_add(1, std::memory_order_relaxed);
}

// The running fiber, for checks and the stack-overflow report (async-signal-safe).
void describe_running(char* buf, std::size_t cap) noexcept {
  Scheduler* scheduler = Scheduler::current();
  const FiberRecord* f = scheduler != nullptr ? scheduler->running() : nullptr;
  if (f != nullptr) format_fiber(buf, cap, f->id, f->name);
}

}  // namespace

void fiber_check_failed(const FiberRecord& f, const char* condition, const char* message,
                        const char* file, int line) noexcept {
  char detail[192];
  format_fiber_state(detail, sizeof detail, f);
  check_failed(condition, message, file, line, detail);
}

std::string describe_fiber(const FiberRecord& f) {
  char buf[160];
  format_fiber(buf, sizeof buf, f.id, f.name);
  return buf;
}

Scheduler::Scheduler(LoopParts& parts, Loop& owner, const LoopOptions& options)
    : parts_(parts),
      owner_(owner),
      default_stack_(options.stack),
      stacks_(StackPool::this_thread()),
      serial_(next_serial()),
      records_(new RecordPool(serial_)),
      foreign_records_(new RecordPool(serial_, /*shared=*/true)),
      timers_(parts.timers),
      exception_handler_(&print_fiber_failure) {
  if (tls_scheduler != nullptr) {
    delete records_;
    delete foreign_records_;
    throw std::logic_error(
        "fiberloop::Loop: this thread already has a Loop; use Loop::current(), or destroy the "
        "other Loop first (one Loop per thread)");
  }
  raise_fd_limit();
  set_fiber_describer(&describe_running);
  set_generator_switch_hook(&on_generator_switch);
  tls_scheduler = this;
}

Scheduler::~Scheduler() {
  if (tls_scheduler == this) tls_scheduler = nullptr;
  // Tasks that outlive the loop see it gone: each record's loop becomes null
  // last, after the pools are orphaned, since another thread that sees it
  // null may drop the record into its orphaned pool at once
  // (task_posts.h, post_to_loop_of, which also reads it under the lock
  // let_go_of_records() takes).
  std::vector<FiberRecord*> live;
  const auto collect = [&live](FiberRecord& f) { live.push_back(&f); };
  records_->for_each_live(collect);
  foreign_records_->for_each_live(collect);
  if (abandoned_fibers_) {
    // Abandoned fibers keep their records (and stacks): leaked on purpose,
    // and kept reachable here so that leak checkers see it is meant.
    // (A group destroys its loops on their threads at once: under a lock.)
    static std::mutex leaked_mutex;
    static auto* leaked = new std::vector<RecordPool*>;
    std::lock_guard lock(leaked_mutex);
    leaked->push_back(records_);
    leaked->push_back(foreign_records_);
  }
  records_->orphan();
  foreign_records_->orphan();
  let_go_of_records(live);
}

Reactor& Scheduler::reactor() noexcept { return parts_.reactor; }

LoopParts& Scheduler::parts() noexcept { return parts_; }

void Scheduler::throw_wrong_thread(const char* what) {
  throw std::logic_error(std::string(what) +
                         ": this Loop belongs to another thread; hand work to it with "
                         "call_soon_threadsafe()");
}

void Scheduler::throw_outside_fiber(const char* what) {
  throw std::logic_error(std::string(what) +
                         " called outside a fiber; call it from a fiber (spawn one, or use "
                         "fiberloop::run(main))");
}

// ---- parking and waking -----------------------------------------------------

void Scheduler::interrupt(FiberRecord& f, std::uint8_t bit) noexcept {
  f.pending |= bit;
  // A fiber parked while unwinding is left parked: see may_interrupt().
  if (f.state == FiberState::kParked && f.exceptions.uncaught == 0 && f.outer_unwinding == 0) {
    make_ready(f);
  }
}

void Scheduler::remote_wake(FiberRecord& f, std::uint32_t park) noexcept {
  WakeToken& token = f.wake_token;
  // Only ever forward: a late wake for an earlier park must not overwrite
  // one for the park the fiber is in now (serial-number order).
  std::uint32_t seen = token.park.load(std::memory_order_seq_cst);
  while (static_cast<std::int32_t>(park - seen) > 0 &&
         !token.park.compare_exchange_weak(seen, park, std::memory_order_seq_cst)) {
  }
  if (!token.queued.exchange(true, std::memory_order_seq_cst)) parts_.remote.push(token);
}

// A WakeToken's handler, on the fiber's loop thread.
void handle_wake_token(RemoteItem* item, bool /*drop*/) {
  auto& token = *static_cast<WakeToken*>(item);
  auto& f = *static_cast<FiberRecord*>(token.fiber);
  // Cleared before `park` is read: a wake pushed after this reads its park.
  token.queued.store(false, std::memory_order_seq_cst);
  const std::uint32_t park = token.park.load(std::memory_order_seq_cst);
  if (f.state == FiberState::kParked && f.park_seq == park) {
    f.woken_remotely = true;
    f.scheduler->wake(f);
  }
}

void Scheduler::post(RemoteItem& item) noexcept { parts_.remote.push(item); }

void Scheduler::serve_remote() noexcept { parts_.remote.drain(closing_); }

void Scheduler::cancel(FiberRecord& f) noexcept {
  if (!f.finished() && f.state != FiberState::kAbandoned) interrupt(f, FiberRecord::kCancel);
}

namespace {

// park_waiter()'s deadline: a wake like any other, unless a notifier woke
// the fiber first. A fiber an interrupt made ready, and that has not run
// yet, takes the deadline too, and the interrupt waits for its next
// suspension point (a sleep keeps its timer until it runs: the reference
// model pins this).
struct ParkTimer : TimerNode {
  FiberRecord* fiber = nullptr;
  bool fired = false;
};

}  // namespace

Scheduler::ParkEnd Scheduler::park_waiter_timed(TimePoint deadline, WaitKind kind,
                                                std::int64_t detail) {
  FiberRecord& self = *current_;
  ParkTimer timer;
  timer.fiber = &self;
  timer.fire = [](TimerNode* node) {
    auto& t = *static_cast<ParkTimer*>(node);
    if (t.fiber->notified) return;  // a notifier came first
    t.fired = true;
    if (t.fiber->state == FiberState::kParked) t.fiber->scheduler->make_ready(*t.fiber);
  };
  parts_.timers.push(timer, deadline);
  suspend_parked(self, kind, detail);
  parts_.timers.remove(timer);
  if (timer.fired) return ParkEnd::kTimedOut;
  return self.notified ? ParkEnd::kWoken : ParkEnd::kInterrupted;
}

bool Scheduler::park_until(TimePoint deadline, WaitKind kind, std::int64_t detail) {
  FiberRecord& self = running_fiber("park");
  deliver_interrupt(self);
  const ParkEnd end = park_waiter(deadline, kind, detail);
  if (end == ParkEnd::kInterrupted) deliver_interrupt(self);
  return end == ParkEnd::kWoken;
}

// ---- switching --------------------------------------------------------------

// Inline into pick_next(), its one caller: one call per switch, not two.
[[gnu::always_inline]] inline FiberRecord* Scheduler::pick_one() noexcept {
  if (budget_ == 0) {
    // The iteration is over. Start the next one here, without a detour
    // through the run loop, unless the run loop has work of its own.
    if (ready_.empty() || parts_.needs_scheduler()) return nullptr;
    budget_ = ready_.size();
    ++iterations_;
  }
  --budget_;
  FiberRecord* next = ready_.pop_front();
  FIBERLOOP_CHECK_FIBER(*next, next->state == FiberState::kReady,
                        "pick_next: a fiber in the ready queue is not ready");
  // Fetch ahead what later switches will touch: with many fibers each one is
  // a cache (and TLB) miss. Records kRecordAhead switches ahead; the saved
  // registers on their stacks kContextAhead ahead (their record, fetched
  // earlier, says where those are). A fiber not yet started has no saved
  // registers (context is null): prefetching near address 0 is harmless, and
  // integer arithmetic keeps that free of a branch and of pointer UB.
  if (FiberRecord* soon = ready_.peek(kContextAhead)) {
    const auto sp = reinterpret_cast<std::uintptr_t>(soon->context);
    __builtin_prefetch(reinterpret_cast<const void*>(sp));
    __builtin_prefetch(reinterpret_cast<const void*>(sp + 64));
    __builtin_prefetch(reinterpret_cast<const void*>(sp + 128));
  }
  if (FiberRecord* later = ready_.peek(kRecordAhead)) __builtin_prefetch(later);
  // A fiber that has not run yet gets its stack in pick_next(); one that
  // cannot (or was cancelled first) finishes on the spot, and it picks again.
  return next;
}

FiberRecord* Scheduler::pick_next() noexcept {
  // A loop, not a recursion: a million fibers cancelled before they ran
  // finish here one after another.
  for (;;) {
    FiberRecord* next = pick_one();
    if (next == nullptr || next->context != nullptr || prepare_to_run(*next)) [[likely]]
      return next;
  }
}

bool Scheduler::begins_iteration_alone() noexcept {
  FIBERLOOP_CHECK(budget_ == 0, "yield: fibers left to run in this iteration, but none ready");
  if (parts_.needs_scheduler()) return false;
  ++iterations_;
  return true;
}

void Scheduler::resume_from_scheduler(FiberRecord& f) noexcept {
  ++switches_;
  current_ = &f;
  f.state = FiberState::kRunning;
  scheduler_stack_ = current_stack();
  switch_context(&scheduler_context_, &scheduler_exceptions_, f.context, f.exceptions, &f,
                 stack_of(f));
  current_ = nullptr;
}

void Scheduler::run_iteration() noexcept {
  budget_ = ready_.size();
  ++iterations_;
  // The run loop starts the iteration itself: pick_next() would hand control
  // straight back whenever the run loop has work pending.
  if (FiberRecord* next = pick_next()) resume_from_scheduler(*next);
}

// ---- the loop of this thread ------------------------------------------------

void throw_no_loop(const char* what) {
  if (on_blocking_worker()) {
    throw std::logic_error(std::string(what) +
                           ": called in a run_blocking job, on a worker thread, which has no "
                           "Loop; a job runs plain blocking code: call fiberloop's functions "
                           "(read_file, sleep_for, streams) from the fiber instead");
  }
  throw std::logic_error(std::string(what) +
                         ": no Loop on this thread (called outside a fiber); create a "
                         "fiberloop::Loop or use fiberloop::run(main)");
}

FiberRecord& running_fiber_or_throw(const char* what) {
  Scheduler* scheduler = Scheduler::current();
  if (scheduler == nullptr) throw_no_loop(what);
  return scheduler->running_fiber(what);
}

}  // namespace fiberloop::internal
