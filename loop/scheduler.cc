// The scheduler: how fibers are spawned, switched, parked, woken and ended.
//
// Invariants:
// - Every fiber is in exactly one state: kRunning (it is current_), kReady (in
//   ready_ exactly once), kParked (in at most one wait list, through its
//   WaitTag hook, and nowhere in ready_), or kFinished (stack released, not in
//   all_).
// - At most one fiber runs; while the scheduler's own code runs (on the
//   thread's stack), current_ is null.
// - budget_ <= ready_.size(): fibers leave ready_ only by being picked to run.
//   An iteration runs the budget_ fibers that were ready when it began; a
//   fiber made ready during it runs in the next one.
// - Fibers switch directly to the next ready fiber; control returns to the
//   scheduler only when the iteration's budget is spent and the scheduler has
//   work (needs_scheduler()), or when nothing is ready.
// - A fiber's record lives while refs > 0: one ref for the running fiber
//   (dropped after its stack is released), one for its Task handle.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>

#include "fiber/internal/overflow_guard.h"
#include "loop/errors.h"
#include "loop/internal/loop_core.h"
#include "loop/internal/stall_watchdog.h"

namespace fiberloop::internal {
thread_local LoopCore* tls_loop __attribute__((tls_model("initial-exec"))) = nullptr;

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

// For the stack-overflow report: "fiber 7 'name'", by hand (async-signal-safe).
void describe_running_fiber(char* buf, std::size_t cap) noexcept {
  LoopCore* core = tls_loop;
  FiberRecord* f = core != nullptr ? core->running() : nullptr;
  if (f == nullptr || cap < 32) return;  // keep the caller's "a fiber"
  std::size_t n = 0;
  auto put = [&](char c) {
    if (n + 1 < cap) buf[n++] = c;
  };
  for (const char* p = "fiber "; *p; ++p) put(*p);
  char digits[24];
  int d = 0;
  for (FiberId id = f->id; d == 0 || id != 0; id /= 10)
    digits[d++] = static_cast<char>('0' + id % 10);
  while (d > 0) put(digits[--d]);
  put(' ');
  put('\'');
  for (std::size_t i = 0; i < f->name.size() && i < 64; ++i) put(f->name.data()[i]);
  put('\'');
  buf[n] = '\0';
}

bool is_cancellation(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const fiberloop::Cancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}

void default_exception_handler(std::exception_ptr e, const FiberInfo& info) {
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    what = ex.what();
  } catch (...) {
  }
  std::fprintf(stderr, "fiberloop: fiber %llu '%s' (spawned at %s:%u) failed: %s\n",
               static_cast<unsigned long long>(info.id), info.name.c_str(),
               info.spawned_at.file_name(), static_cast<unsigned>(info.spawned_at.line()),
               what.c_str());
}

}  // namespace

LoopCore::LoopCore(Loop& owner, const LoopOptions& options)
    : owner_(owner),
      options_(options),
      stacks_(StackPool::this_thread()),
      records_(new RecordPool),
      exception_handler_(&default_exception_handler),
      callbacks_(std::make_shared<CallbackTable>(this)) {
  raise_fd_limit();
  set_fiber_describer(&describe_running_fiber);
  if (tls_loop != nullptr) {
    delete records_;
    throw std::logic_error(
        "fiberloop::Loop: this thread already has a Loop; use Loop::current(), or destroy the "
        "other Loop first (one Loop per thread)");
  }
  Duration threshold = options_.stall_threshold;
  if (threshold == Duration::zero()) {
    if (const char* ms = std::getenv("FIBERLOOP_STALL_THRESHOLD_MS")) {
      char* end = nullptr;
      const long value = std::strtol(ms, &end, 10);
      if (end == ms || *end != '\0' || value < 0) {
        std::fprintf(stderr,
                     "fiberloop: FIBERLOOP_STALL_THRESHOLD_MS='%s' is not a number of "
                     "milliseconds; the stall detector stays off\n",
                     ms);
      } else {
        threshold = std::chrono::milliseconds(value);
      }
    }
  }
  if (threshold > Duration::zero()) {
    options_.stall_threshold = threshold;
    try {
      watchdog_ = std::make_unique<StallWatchdog>(*this, threshold);
    } catch (...) {
      delete records_;
      throw;
    }
  }
  // Nothing throws from here on.
  tls_loop = this;
  debug_lwp_ = static_cast<long>(::gettid());
  register_for_debuggers(this, true);
}

LoopCore::~LoopCore() {
  pool_.reset();  // joins the workers while what their jobs post to exists
  drop_remote();
  discard_callbacks();
  callbacks_->core = nullptr;  // TimerHandles that outlive the loop see it gone
  // Tasks that outlive the loop see it gone too.
  records_->for_each_live([](FiberRecord& f) { f.loop = nullptr; });
  if (tls_loop == this) tls_loop = nullptr;
  register_for_debuggers(this, false);
  if (leaked_fibers_) {
    // Fibers that would not unwind keep their records (and stacks): leaked
    // on purpose, and kept reachable here so leak checkers see it is meant.
    static auto* leaked = new std::vector<RecordPool*>;
    leaked->push_back(records_);
  }
  records_->orphan();
}

LoopCore* debug_loop_list = nullptr;

namespace {
std::mutex& loop_list_mutex() {
  static std::mutex mutex;
  return mutex;
}
}  // namespace

bool loop_is_live(const LoopCore* core) noexcept {
  std::lock_guard lock(loop_list_mutex());
  for (const LoopCore* c = debug_loop_list; c != nullptr; c = c->debug_next_) {
    if (c == core) return true;
  }
  return false;
}

void register_for_debuggers(LoopCore* core, bool add) noexcept {
  std::lock_guard lock(loop_list_mutex());
  if (add) {
    core->debug_next_ = debug_loop_list;
    debug_loop_list = core;
    return;
  }
  for (LoopCore** p = &debug_loop_list; *p != nullptr; p = &(*p)->debug_next_) {
    if (*p == core) {
      *p = core->debug_next_;
      return;
    }
  }
}

void LoopCore::throw_wrong_thread(const char* what) {
  throw std::logic_error(std::string(what) +
                         ": this Loop belongs to another thread; hand work to it with "
                         "call_soon_threadsafe()");
}

// ---- switching --------------------------------------------------------------

void LoopCore::resume_from_scheduler(FiberRecord& f) noexcept {
  ++switches_;
  current_ = &f;
  f.state = FiberState::kRunning;
  scheduler_stack_ = current_stack();
  switch_context(&scheduler_context_, &scheduler_exceptions_, f.context, f.exceptions, &f,
                 stack_of(f));
  current_ = nullptr;
}

void LoopCore::wake(FiberRecord& f) noexcept {
  f.notified = true;
  if (f.state == FiberState::kParked) make_ready(f);
}

void LoopCore::cancel(FiberRecord& f) noexcept {
  if (!f.finished()) interrupt(f, FiberRecord::kCancel);
}

void LoopCore::interrupt(FiberRecord& f, std::uint8_t bit) noexcept {
  f.pending |= bit;
  // A fiber parked while unwinding is left parked: see may_interrupt().
  if (f.state == FiberState::kParked && f.exceptions.uncaught == 0) {
    static_cast<FiberRecord::WaitHook&>(f).unlink();
    make_ready(f);
  }
}

// ---- spawning ---------------------------------------------------------------

FiberRecord* LoopCore::create_fiber(SpawnOptions&& options, std::size_t callable_bytes,
                                    std::size_t callable_align, void (*body)(FiberRecord*, bool),
                                    const std::source_location& where) {
  check_thread("spawn");
  FiberRecord* f = records_->acquire();
  if (callable_bytes <= FiberRecord::kInlineCallable && callable_align <= 16) {
    f->callable = f->callable_buffer;
  } else {
    try {
      f->callable = ::operator new (callable_bytes, std::align_val_t{callable_align});
      f->callable_align = static_cast<std::uint32_t>(callable_align);
    } catch (...) {
      records_->release(f);
      throw;
    }
  }
  f->loop = this;
  f->refs = 2;  // the fiber itself and its Task
  f->id = next_id_++;
  const StackOptions& stack = options.stack ? *options.stack : options_.stack;
  f->stack.size = stack.size;
  f->stack.guarded = stack.guard_page;
  f->body = body;
  f->start = &LoopCore::fiber_main;
  f->name = std::move(options.name);
  f->spawned_at = where;
  return f;
}

bool LoopCore::prepare_to_run(FiberRecord& f) noexcept {
  if ((f.pending & FiberRecord::kCancel) == 0) {
    try {
      f.stack = stacks_.acquire(StackOptions{f.stack.size, f.stack.guarded});
      prepare_stack_for_reuse(f.stack.bottom(), f.stack.size);
      f.context = make_context(f.stack.top, f.stack.size);
#if FIBERLOOP_SANITIZE_SWITCH
      f.suspended_on = context_stack(f.stack.bottom(), f.stack.size);
#endif
      return true;
    } catch (...) {
      finish_unstarted(f, std::current_exception());  // join() rethrows it
      return false;
    }
  }
  finish_unstarted(f, std::make_exception_ptr(fiberloop::Cancelled{}));
  return false;
}

void LoopCore::finish_unstarted(FiberRecord& f, std::exception_ptr error) noexcept {
  f.pending = 0;
  f.error = std::move(error);
  f.body(&f, false);  // destroys the callable
  mark_finished(f);
  release_ref(f);  // the fiber's own reference
}

void LoopCore::start_fiber(FiberRecord& f) {
  all_.push_back(f);
  ++created_;
  if (closing_) [[unlikely]] {  // spawned during shutdown: cancelled before it runs
    finish_unstarted(f, std::make_exception_ptr(fiberloop::Cancelled{}));
    return;
  }
  make_ready(f);
}

void LoopCore::discard_fiber(FiberRecord& f) noexcept {
  f.free_callable();
  f.refs = 1;
  release_ref(f);
}

void LoopCore::throw_outside_fiber(const char* what) {
  throw std::logic_error(std::string(what) +
                         " called outside a fiber; call it from a fiber (spawn one, or use "
                         "fiberloop::run(main))");
}

void enter_body(FiberRecord& f) {
  if (f.pending & FiberRecord::kCancel) {
    f.pending = 0;
    throw fiberloop::Cancelled{};
  }
}

FiberRecord& running_fiber_or_throw(const char* what) {
  LoopCore* core = LoopCore::current();
  if (core == nullptr) throw_no_loop(what);
  return core->running_fiber(what);
}

void LoopCore::fiber_main(ContextEntry* entry) noexcept {
  auto& f = static_cast<FiberRecord&>(*entry);
  f.body(&f, true);  // catches everything the callable throws
  f.loop->finish_running();
}

void LoopCore::mark_finished(FiberRecord& f) noexcept {
  f.state = FiberState::kFinished;
  static_cast<ListHook<AllFibersTag>&>(f).unlink();
  f.finish_seq = ++finished_;
  while (!f.done_waiters.empty()) {
    DoneWaiter& w = f.done_waiters.pop_front();
    // A waiter no longer parked was interrupted, or (wait_any) woken by
    // another task that finished first.
    if (w.fiber->state != FiberState::kParked) continue;
    if (w.winner != nullptr && *w.winner == DoneWaiter::kNone) *w.winner = w.index;
    wake(*w.fiber);
  }
  if (&f == run_target_) attention_ = true;
  if (f.detached && f.error) report_failure(f);
}

void LoopCore::finish_running() noexcept {
  FiberRecord& f = *current_;
  mark_finished(f);
  FiberRecord* next = pick_next();
  ++switches_;
  current_ = next;
  if (next != nullptr) next->state = FiberState::kRunning;
  // Still on f's stack: the pool only unmaps stacks in trim(), between
  // iterations, so handing it back before the final switch is safe.
  stacks_.release(f.stack);
  f.stack = Stack{};
  release_ref(f);  // from here on, f may be recycled
  if (next != nullptr) exit_context(next->context, next->exceptions, next, stack_of(*next));
  exit_context(scheduler_context_, scheduler_exceptions_, nullptr, scheduler_stack_);
}

void LoopCore::release_ref(FiberRecord& f) noexcept {
  if (--f.refs == 0) f.pool->release(&f);
}

// ---- join and Task ----------------------------------------------------------

void LoopCore::throw_joined_twice(const FiberRecord& f) {
  throw std::logic_error("Task::join: " + describe_fiber(f) +
                         " was already joined; a Task can be joined once (keep the value "
                         "from the first join)");
}

void LoopCore::throw_self_join(const FiberRecord& f) {
  throw std::logic_error("Task::join: " + describe_fiber(f) + " joins itself, which never returns");
}

void LoopCore::throw_abandoned(const FiberRecord& f) {
  throw std::logic_error("Task::join: " + describe_fiber(f) +
                         " was abandoned when its loop shut down (it would not end after "
                         "cancellation); it has no outcome");
}

void LoopCore::run_until_finished(FiberRecord& f) {
  check_thread("Task::join");
  if (in_scheduler_) {
    throw std::logic_error(
        "Task::join from a loop callback would block the loop; join from a fiber instead");
  }
  const SchedulerExit exit = run_scheduler(&f);
  if (f.finished()) return;
  if (exit == SchedulerExit::kStopped) {
    throw std::runtime_error("Task::join: the loop was stopped (Loop::stop) before " +
                             describe_fiber(f) + " finished");
  }
  throw std::runtime_error(deadlock_report(describe_fiber(f)));
}

std::string LoopCore::deadlock_report(const std::string& awaited) const {
  std::ostringstream report;
  report << "fiberloop: deadlock: every fiber is parked and nothing can wake them (no timer, fd, "
            "callback, run_blocking job or KeepAlive is pending, and no thread but fiberloop's "
            "own exists to post one) while waiting for "
         << awaited << "; the parked fibers:\n";
  const TimePoint now = Clock::now();
  all_.for_each([&](const FiberRecord& p) { describe_fiber_line(report, p, now); });
  return report.str();
}

void LoopCore::drop_task(FiberRecord& f) noexcept {
  if (!f.finished()) {
    f.detached = true;
  } else if (f.error && !f.joined) {
    report_failure(f);
  }
  release_ref(f);
}

void LoopCore::report_failure(FiberRecord& f) noexcept {
  if (is_cancellation(f.error)) return;  // cancelling is not failing
  const FiberInfo info{f.id, f.name, f.spawned_at};
  if (f.loop != nullptr) {
    f.loop->report(f.error, info);
  } else {  // its loop is gone, and with it the loop's handler
    default_exception_handler(f.error, info);
  }
}

void LoopCore::report(std::exception_ptr error, const FiberInfo& info) noexcept {
  try {
    exception_handler_(error, info);
  } catch (...) {
    std::fprintf(stderr, "fiberloop: the exception handler threw while reporting fiber %llu\n",
                 static_cast<unsigned long long>(info.id));
  }
}

void LoopCore::set_exception_handler(ExceptionHandler handler) {
  check_thread("Loop::set_exception_handler");
  exception_handler_ = handler ? std::move(handler) : ExceptionHandler(&default_exception_handler);
}

// ---- the scheduler's own loop -----------------------------------------------

void LoopCore::run() {
  check_thread("Loop::run");
  if (current_ != nullptr || in_scheduler_) {
    throw std::logic_error(
        "Loop::run: the loop is already running (called from a fiber or a "
        "callback); spawn a fiber instead");
  }
  (void)run_scheduler(nullptr);
}

void LoopCore::stop() noexcept {
  stop_requested_.store(true, std::memory_order_relaxed);
  notify_remote();
}

// One pass per iteration: take what other threads posted, poll (blocking
// when nothing is ready), fire due timers, run the callbacks that were due
// when the pass began, then hand the CPU to the ready fibers until the
// iteration's budget is spent (they switch among themselves without
// returning here).
LoopCore::SchedulerExit LoopCore::run_scheduler(FiberRecord* until) {
  in_scheduler_ = true;
  active_.store(true, std::memory_order_relaxed);
  run_target_ = until;
  SchedulerExit exit = SchedulerExit::kNothingToDo;
  for (;;) {
    attention_ = closing_;  // while closing, the scheduler counts every iteration
    if (until != nullptr && until->finished()) {
      exit = SchedulerExit::kTargetFinished;
      break;
    }
    take_remote();
    if (stop_requested_.exchange(false, std::memory_order_relaxed) && !closing_) {
      exit = SchedulerExit::kStopped;
      break;
    }
    if (!poll_and_expire()) break;  // nothing can make progress
    run_callbacks();
    if (!ready_.empty()) {
      if (closing_ && ++closing_iterations_ > kShutdownIterations) break;
      // The scheduler starts the iteration itself: pick_next() would hand
      // control straight back whenever the scheduler has work pending.
      budget_ = ready_.size();
      ++iterations_;
      if (FiberRecord* next = pick_next()) resume_from_scheduler(*next);
    }
  }
  run_target_ = nullptr;
  in_scheduler_ = false;
  active_.store(false, std::memory_order_relaxed);
  return exit;
}

LoopStats LoopCore::stats() const noexcept {
  LoopStats s;
  s.fibers_created = created_;
  s.fibers_finished = finished_;
  s.fibers_alive = created_ - finished_;
  s.switches = switches_.get();
  s.iterations = iterations_.get();
  const StackPoolStats pool = stacks_.stats();
  s.stacks_outstanding = pool.outstanding;
  s.stacks_pooled = pool.pooled;
  s.timers_pending = timers_.size();
  s.callbacks_run = callbacks_run_.get();
  s.polls = poller_.polls();
  s.time_blocked = poller_.time_blocked();
  s.blocking_jobs = jobs_outstanding_;
  s.fd_waiters = fd_waiters_;
  s.fds_registered = poller_.registered();
  return s;
}

}  // namespace fiberloop::internal
