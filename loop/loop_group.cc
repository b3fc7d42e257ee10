// LoopGroup: the threads, their loops, and the group's life.
//
// A loop thread makes its Loop, holds a KeepAlive on it (an idle group loop
// waits for work instead of returning) and runs it until stop(). Then the
// group closes in two steps, so that no loop's cross-thread queue goes away
// while another loop's fibers may still post to it (a wake-up, a join, a
// primitive becoming shared):
// 1. every loop closes (cancels and unwinds its fibers, as ~Loop does);
// 2. once all have, and ~LoopGroup has released them, each destroys its
//    Loop. Until then a closed loop keeps taking its posts.
#include "loop/loop_group.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <latch>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "loop/internal/loop_parts.h"
#include "loop/internal/own_thread.h"

namespace fiberloop {

struct LoopGroup::Member {
  std::thread thread;
  Loop* loop = nullptr;       // set by the thread once its Loop exists
  std::exception_ptr failed;  // the Loop could not be made
};

namespace {

// The CPUs of the process's affinity mask, in order: its main thread's
// (what taskset sets), not the calling thread's, which may be a loop of
// another group, pinned to one CPU.
std::vector<int> affinity_cpus() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  std::vector<int> cpus;
  if (::sched_getaffinity(::getpid(), sizeof mask, &mask) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &mask)) cpus.push_back(cpu);
    }
  }
  if (cpus.empty()) cpus.push_back(-1);  // unknown: one loop, unpinned
  return cpus;
}

void pin_to(int cpu) noexcept {
  if (cpu < 0) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  (void)::pthread_setaffinity_np(::pthread_self(), sizeof one, &one);
}

}  // namespace

LoopGroup::LoopGroup(GroupOptions options) {
  const std::vector<int> cpus = affinity_cpus();
  const std::size_t n = options.loops != 0 ? options.loops : cpus.size();
  if (options.pin_threads && n > cpus.size()) {
    std::fprintf(stderr,
                 "fiberloop: LoopGroup of %zu loops on %zu CPUs (the affinity mask): loops %zu "
                 "to %zu run unpinned\n",
                 n, cpus.size(), cpus.size(), n - 1);
  }
  // Shared with the threads, which may outlive a constructor that throws.
  auto closed = std::make_shared<std::atomic<std::size_t>>(0);
  auto drained = std::make_shared<std::atomic<std::size_t>>(0);
  auto started = std::make_shared<std::latch>(static_cast<std::ptrdiff_t>(n));
  loops_ = std::span<Member*>(new Member*[n], n);
  for (Member*& m : loops_) m = new Member;
  std::exception_ptr failed;
  for (std::size_t i = 0; i < n; ++i) {
    Member& m = *loops_[i];
    const int cpu = options.pin_threads && i < cpus.size() ? cpus[i] : -1;
    const auto body = [this, &m, started, closed, drained, cpu, i, n, loop_options = options.loop] {
      pin_to(cpu);
      std::optional<Loop> loop;
      try {
        loop.emplace(loop_options);
      } catch (...) {
        m.failed = std::current_exception();
        closed->fetch_add(1, std::memory_order_acq_rel);  // nothing to close or drain
        drained->fetch_add(1, std::memory_order_acq_rel);
        started->count_down();
        return;
      }
      internal::LoopParts& parts = *loop->parts_;
      parts.index = i;
      parts.group = this;
      {
        Loop::KeepAlive idle_is_not_done = loop->keep_alive();
        parts.own_keep_alives = 1;
        m.loop = &*loop;
        started->count_down();
        loop->run();  // until stop()
        // A group's loops run together: one stopped alone (Loop::stop) would
        // leave the others waiting on its fibers. (From this thread, which
        // ~LoopGroup joins before freeing anything stop() reads.)
        stop();
        parts.own_keep_alives = 0;
      }
      // Step 1: close; then take posts until every loop has.
      parts.close();
      // Counts this loop into `done`, and takes posts until every loop is in.
      const auto arrive_and_drain = [&parts](std::atomic<std::size_t>& done, std::size_t all) {
        done.fetch_add(1, std::memory_order_acq_rel);
        while (done.load(std::memory_order_acquire) < all) {
          parts.remote.drain(/*drop=*/true);
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
      };
      arrive_and_drain(*closed, n);
      // Step 2 waits for ~LoopGroup, answering what other threads still
      // post (a spawn on loop(i) after stop() is cancelled before it runs,
      // a join of it answered): blocked in the poller, which a post wakes.
      // (The shutdown dropped the fd callbacks: a ready fd's level-triggered
      // report would keep the poll from blocking.)
      while (!release_.load(std::memory_order_seq_cst)) {
        // release_loops() stores release_ and then wakes: looked at again
        // once polling, so that neither is missed.
        const bool wake_now = parts.remote.enter_poll() || release_.load(std::memory_order_seq_cst);
        try {
          parts.reactor.poll(wake_now ? std::optional(Duration::zero()) : std::nullopt);
        } catch (...) {  // (the poller failed: look again shortly)
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        parts.remote.leave_poll();
        parts.remote.drain(/*drop=*/true);
      }
      // Step 3 waits for every loop's last drain, which may still answer
      // (a wake-up, a join) into this one, and for ~LoopGroup's last touch
      // of this loop (release_loops: one more arrival).
      arrive_and_drain(*drained, n + 1);
      parts.group_releases = true;
      loop.reset();
    };
    try {
      m.thread = internal::start_own_thread("LoopGroup loop " + std::to_string(i),
                                            "fl-loop-" + std::to_string(i), body,
                                            /*runs_fibers=*/true);
    } catch (...) {  // the threads not started count as closed, drained
      failed = std::current_exception();
      const std::size_t missing = n - i;
      closed->fetch_add(missing, std::memory_order_acq_rel);
      drained->fetch_add(missing, std::memory_order_acq_rel);
      for (std::size_t k = i; k < n; ++k) started->count_down();
      break;
    }
  }
  started->wait();
  drained_ = std::move(drained);
  for (Member* m : loops_) {
    if (!failed && m->failed) failed = m->failed;
  }
  if (failed) {
    stop();
    release_loops();
    for (Member* m : loops_) {
      if (m->thread.joinable()) m->thread.join();
      delete m;
    }
    delete[] loops_.data();
    loops_ = {};
    std::rethrow_exception(failed);
  }
}

LoopGroup::~LoopGroup() {
  // Either would wait for itself: the group's close waits for its loops'
  // threads and for their run_blocking jobs.
  const char* refusal = nullptr;
  if (current() == this) {
    refusal =
        "~LoopGroup: called on one of the group's own loop threads (from its fiber or "
        "callback), it would wait for itself; destroy the group from the thread that made it";
  } else if (std::any_of(loops_.begin(), loops_.end(), [](Member* m) {
               return m->loop != nullptr && m->loop->parts_->pool.runs_this_thread();
             })) {
    refusal =
        "~LoopGroup: called in a run_blocking job of one of the group's loops, whose close "
        "would wait for that job; destroy the group from the thread that made it";
  }
  if (refusal != nullptr) {
    // Not a throw: `delete` frees the group's memory after a destructor that
    // throws, and its loop threads read it on.
    std::fprintf(stderr, "fiberloop: %s\n", refusal);
    std::abort();
  }
  stop();
  release_loops();
  for (Member* m : loops_) {
    m->thread.join();
    delete m;
  }
  delete[] loops_.data();
}

Loop& LoopGroup::loop(std::size_t i) {
  if (i >= loops_.size()) {
    throw std::out_of_range("LoopGroup::loop(" + std::to_string(i) + "): the group has " +
                            std::to_string(loops_.size()) + " loops (0 to " +
                            std::to_string(loops_.size() - 1) + ")");
  }
  return *loops_[i]->loop;
}

Loop& LoopGroup::open_loop(std::size_t i, const char* what) {
  if (i >= loops_.size()) {
    throw std::out_of_range(std::string("LoopGroup::") + what + "(" + std::to_string(i) +
                            "): the group has " + std::to_string(loops_.size()) + " loops (0 to " +
                            std::to_string(loops_.size() - 1) + ")");
  }
  if (stopped_.load(std::memory_order_acquire)) {
    throw std::logic_error(std::string("LoopGroup::") + what +
                           ": the group was stopped (LoopGroup::stop); its loops take no more "
                           "work");
  }
  return *loops_[i]->loop;
}

void LoopGroup::stop() noexcept {
  stopped_.store(true, std::memory_order_release);
  for (Member* m : loops_) {
    if (m->loop != nullptr) m->loop->parts_->remote.stop();
  }
}

void LoopGroup::release_loops() noexcept {
  release_.store(true, std::memory_order_seq_cst);
  for (Member* m : loops_) {
    if (m->loop != nullptr) m->loop->parts_->remote.stop();  // wakes its wait in step 2
  }
  // The last touch of any loop is behind: each may now be destroyed.
  drained_->fetch_add(1, std::memory_order_acq_rel);
}

LoopGroup* LoopGroup::current() noexcept {
  Loop* loop = Loop::current();
  return loop != nullptr ? loop->parts_->group : nullptr;
}

// ---- introspection ----------------------------------------------------------

// The caller's own loop answers at once; another loop is asked with a
// fiber spawned there, which needs a caller that may wait and a group that
// still takes work.
std::vector<LoopStats> LoopGroup::stats_per_loop() {
  std::vector<LoopStats> all;
  for (std::size_t i = 0; i < size(); ++i) {
    Loop& l = loop(i);
    if (Loop::current() == &l) {
      all.push_back(l.stats());
      continue;
    }
    check_may_wait("stats", "for the other loops' answers");
    all.push_back(open_loop(i, "stats").spawn([] { return Loop::current()->stats(); }).join());
  }
  return all;
}

LoopStats LoopGroup::stats() {
  LoopStats sum;
  for (const LoopStats& s : stats_per_loop()) {
    sum.fibers_alive += s.fibers_alive;
    sum.fibers_created += s.fibers_created;
    sum.fibers_finished += s.fibers_finished;
    sum.switches += s.switches;
    sum.iterations += s.iterations;
    sum.stacks_outstanding += s.stacks_outstanding;
    sum.stacks_pooled += s.stacks_pooled;
    sum.timers_pending += s.timers_pending;
    sum.callbacks_run += s.callbacks_run;
    sum.polls += s.polls;
    sum.time_blocked += s.time_blocked;
    sum.blocking_jobs += s.blocking_jobs;
    sum.fd_waiters += s.fd_waiters;
    sum.fds_registered += s.fds_registered;
    sum.stack_high_water = std::max(sum.stack_high_water, s.stack_high_water);
  }
  return sum;
}

namespace {

std::string dump_here() {
  std::ostringstream out;
  Loop::current()->dump(out);
  return out.str();
}

}  // namespace

void LoopGroup::dump(std::ostream& out) {
  std::string all;  // written once every loop answered
  for (std::size_t i = 0; i < size(); ++i) {
    all += "== loop " + std::to_string(i) + " of " + std::to_string(size()) + "\n";
    if (Loop::current() == &loop(i)) {
      all += dump_here();
      continue;
    }
    check_may_wait("dump", "for the other loops' answers");
    // Named: the dump shows the fiber that writes it.
    all += open_loop(i, "dump")
               .spawn(SpawnOptions{.name = "LoopGroup::dump"}, [] { return dump_here(); })
               .join();
  }
  out << all;
}

// ---- deadlock ---------------------------------------------------------------

namespace internal {

void Scheduler::begin_wait_beyond_group() noexcept {
  parts_.waits_beyond_group.fetch_add(1, std::memory_order_release);
}

void Scheduler::end_wait_beyond_group() noexcept {
  parts_.waits_beyond_group.fetch_sub(1, std::memory_order_release);
}

}  // namespace internal

void LoopGroup::check_may_wait(const char* what, const char* for_what) {
  internal::Scheduler* const here = internal::Scheduler::current();
  if (here != nullptr && here->running() == nullptr) {
    throw std::logic_error(std::string("LoopGroup::") + what + " must wait " + for_what +
                           ", but was called on a loop's thread outside any fiber (a callback, "
                           "or before or after that loop's run()): it would block that loop; "
                           "call it from a fiber of that loop, or from a thread without a Loop");
  }
}

void LoopGroup::watch_for_deadlock(internal::FiberRecord* main) {
  if (Loop::current() != nullptr) return;  // a loop's thread: its join parks or runs the loop
  using namespace std::chrono_literals;
  Duration interval = 10ms;
  std::vector<std::uint64_t> before;
  bool all_stuck_before = false;
  // One wait for main, looking between ticks (a timed join per look would
  // post to main's loop each time, and so wake the loops it watches).
  internal::Scheduler::wait_done_ticking(*main, interval, [&]() -> Duration {
    std::vector<std::uint64_t> progress;
    bool all_stuck = true;
    for (Member* m : loops_) {
      internal::LoopParts& parts = *m->loop->parts_;
      all_stuck = all_stuck && parts.stuck.load(std::memory_order_acquire) &&
                  !parts.remote.pending() &&
                  parts.waits_beyond_group.load(std::memory_order_acquire) == 0;
      progress.push_back(parts.diagnostics.heartbeat());
    }
    // Threads first, then posts again: a thread that posted and ended in
    // between is seen gone only after its post is there to be seen.
    if (all_stuck && all_stuck_before && progress == before && !internal::other_threads_exist() &&
        std::none_of(loops_.begin(), loops_.end(),
                     [](Member* m) { return m->loop->parts_->remote.pending(); })) {
      std::string report =
          "fiberloop: deadlock: every loop of the LoopGroup waits, nothing is pending on any of "
          "them (timers, fds, callbacks, jobs, KeepAlives), and no thread but fiberloop's own "
          "exists to wake them. The parked fibers:\n";
      std::ostringstream dumps;
      dump(dumps);
      report += dumps.str();
      internal::Scheduler::cancel_task(*main);
      throw std::runtime_error(report);
    }
    all_stuck_before = all_stuck;
    before = std::move(progress);
    interval = std::min<Duration>(interval * 2, 1s);
    return interval;
  });
}

}  // namespace fiberloop
