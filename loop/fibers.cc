// A fiber's life: spawned, started on a stack, finished (returned, threw,
// or cancelled before it ran), joined or dropped, and its failure reported
// when nobody can receive it. The invariants are scheduler.cc's.
#include <cstdio>
#include <new>
#include <stdexcept>
#include <string>

#include "fiber/internal/stack_pool.h"
#include "loop/errors.h"
#include "loop/internal/format.h"
#include "loop/internal/loop_parts.h"
#include "loop/internal/record_pool.h"
#include "loop/internal/spawn.h"

namespace fiberloop::internal {
bool is_cancellation(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const fiberloop::Cancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}

void print_fiber_failure(std::exception_ptr e, const FiberInfo& info) {
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    what = ex.what();
  } catch (...) {
  }
  char who[160];
  format_fiber(who, sizeof who, info.id, info.name);
  std::fprintf(stderr, "fiberloop: %s (spawned at %s:%u) failed: %s\n", who,
               info.spawned_at.file_name(), static_cast<unsigned>(info.spawned_at.line()),
               what.c_str());
}

// ---- spawning and ending ----------------------------------------------------

FiberRecord* Scheduler::create_fiber(SpawnOptions&& options, std::size_t callable_bytes,
                                     std::size_t callable_align, void (*body)(FiberRecord*, bool),
                                     const std::source_location& where) {
  const bool foreign = tls_scheduler != this;
  RecordPool& pool = foreign ? *foreign_records_ : *records_;
  FiberRecord* f = pool.acquire();
  if (callable_bytes <= FiberRecord::kInlineCallable && callable_align <= 16) {
    f->callable = f->callable_buffer;
  } else {
    try {
      f->callable = ::operator new (callable_bytes, std::align_val_t{callable_align});
      f->callable_align = static_cast<std::uint32_t>(callable_align);
    } catch (...) {
      pool.release(f);
      throw;
    }
  }
  f->scheduler = this;
  f->refs = 2;  // the fiber itself and its Task
  if (foreign) {
    f->id = ids_.fetch_add(1, std::memory_order_relaxed);
  } else {
    if (next_id_ == id_block_end_) [[unlikely]] {
      next_id_ = ids_.fetch_add(kIdBlock, std::memory_order_relaxed);
      id_block_end_ = next_id_ + kIdBlock;
    }
    f->id = next_id_++;
  }
  const StackOptions& stack = options.stack ? *options.stack : default_stack_;
  f->stack.size = stack.size;
  f->stack.guarded = stack.guard_page;
  f->body = body;
  f->start = &Scheduler::fiber_main;
  if (!options.name.empty()) f->name = std::move(options.name);  // a released record's is empty
  f->spawned_at = where;
  return f;
}

void Scheduler::start_fiber_slow(FiberRecord& f) {
  if (tls_scheduler != this) {
    (void)post_task_op(f, TaskOp::kStart);
    return;
  }
  start_here(f);
}

void Scheduler::start_here(FiberRecord& f) {
  FIBERLOOP_CHECK_FIBER(f, f.state == FiberState::kReady && f.context == nullptr,
                        "start_fiber: the record is not a fresh one");
  all_.push_back(f);
  ++created_;
  if (closing_) [[unlikely]] {  // spawned during shutdown: cancelled before it runs
    finish_unstarted(f, std::make_exception_ptr(fiberloop::Cancelled{}));
    return;
  }
  ready_.push_back(&f);
}

void Scheduler::discard_fiber(FiberRecord& f) noexcept {
  f.free_callable();
  f.refs = 1;
  release_ref(f);
}

bool Scheduler::prepare_to_run(FiberRecord& f) noexcept {
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

void Scheduler::finish_unstarted(FiberRecord& f, std::exception_ptr error) noexcept {
  f.pending = 0;
  f.error = std::move(error);
  f.body(&f, false);  // destroys the callable
  mark_finished(f);
  release_ref(f);  // the fiber's own reference
}

[[noreturn]] void throw_cancelled_before_start(FiberRecord& f) {
  f.pending = 0;
  throw fiberloop::Cancelled{};
}

void Scheduler::fiber_main(ContextEntry* entry) noexcept {
  auto& f = static_cast<FiberRecord&>(*entry);
  f.body(&f, true);  // catches everything the callable throws
  f.scheduler->finish_running();
}

void Scheduler::mark_finished(FiberRecord& f) noexcept {
  FIBERLOOP_CHECK_FIBER(f, f.state == FiberState::kRunning || f.state == FiberState::kReady,
                        "mark_finished: only a running or a never-started fiber finishes");
  f.state = FiberState::kFinished;
  f.done_flag.store(true, std::memory_order_release);
  static_cast<ListHook<AllFibersTag>&>(f).unlink();
  f.finish_seq = ++finished_;
  while (!f.done_waiters.empty()) {
    DoneWaiter& w = f.done_waiters.pop_front();
    if (w.on_done != nullptr) {  // a join from another thread
      w.on_done(w);
      continue;
    }
    // A waiter no longer parked was interrupted, or (wait_any) woken by
    // another task that finished first.
    if (w.fiber->state != FiberState::kParked) continue;
    if (w.winner != nullptr && *w.winner == DoneWaiter::kNone) *w.winner = w.index;
    wake(*w.fiber);
  }
  if (&f == run_target_) return_to_scheduler_ = true;
  if (f.detached && f.error) report_failure(f);
}

void Scheduler::finish_running() noexcept {
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

[[gnu::always_inline]] inline void Scheduler::release_ref(FiberRecord& f) noexcept {
  FIBERLOOP_CHECK_FIBER(f, f.refs > 0, "release_ref: the record has no reference left");
  if (--f.refs == 0) f.pool->release(&f);
}

// ---- join and Task ----------------------------------------------------------

void Scheduler::throw_joined_twice(const FiberRecord& f) {
  throw std::logic_error("Task::join: " + describe_fiber(f) +
                         " was already joined; a Task can be joined once (keep the value "
                         "from the first join)");
}

void Scheduler::throw_self_join(const FiberRecord& f) {
  throw std::logic_error("Task::join: " + describe_fiber(f) + " joins itself, which never returns");
}

void Scheduler::throw_abandoned(const FiberRecord& f) {
  throw std::logic_error("Task::join: " + describe_fiber(f) +
                         " was abandoned when its loop shut down (it would not end after "
                         "cancellation); it has no outcome");
}

void Scheduler::run_until_finished(FiberRecord& f) {
  check_thread("Task::join");
  if (in_scheduler_) {
    throw std::logic_error(
        "Task::join from a loop callback would block the loop; join from a fiber instead");
  }
  const LoopParts::Exit exit = parts_.run(&f);
  if (f.finished()) return;
  if (exit == LoopParts::Exit::kStopped) {
    throw std::runtime_error("Task::join: the loop was stopped (Loop::stop) before " +
                             describe_fiber(f) + " finished");
  }
  throw std::runtime_error(parts_.deadlock_report(f));
}

void Scheduler::drop_task_slow(FiberRecord& f) noexcept {
  const Scheduler* const home = loop_of(f).load(std::memory_order_acquire);
  if (home != tls_scheduler && home != nullptr && post_task_op(f, TaskOp::kDrop)) return;
  drop_here(f);  // here, or (post_task_op refused) its loop is gone
}

void Scheduler::release_to_pool(FiberRecord& f) noexcept { f.pool->release(&f); }

void Scheduler::drop_here(FiberRecord& f) noexcept {
  if (!f.finished()) {
    f.detached = true;
  } else if (f.error && !f.joined) {
    report_failure(f);
  }
  release_ref(f);
}

void Scheduler::report_failure(FiberRecord& f) noexcept {
  if (is_cancellation(f.error)) return;  // cancelling is not failing
  const FiberInfo info{f.id, f.name, f.spawned_at};
  if (f.scheduler != nullptr) {
    f.scheduler->report(f.error, info);
  } else {  // its loop is gone, and with it the loop's handler
    print_fiber_failure(f.error, info);
  }
}

void Scheduler::report(std::exception_ptr error, const FiberInfo& info) noexcept {
  try {
    exception_handler_(error, info);
  } catch (...) {
    char who[160];
    format_fiber(who, sizeof who, info.id, info.name);
    std::fprintf(stderr, "fiberloop: the exception handler threw while reporting %s\n", who);
  }
}

void Scheduler::set_exception_handler(ExceptionHandler handler) {
  check_thread("Loop::set_exception_handler");
  exception_handler_ = handler ? std::move(handler) : ExceptionHandler(&print_fiber_failure);
}

}  // namespace fiberloop::internal
