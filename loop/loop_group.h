// LoopGroup: one Loop per core, each on its own thread (the shard-per-core
// model of Seastar and Photon). Fibers never move between loops, so their
// thread-locals and errno stay valid; work reaches a loop through spawn_on,
// and the sync/ primitives work between fibers of different loops.
//
//   int main() {
//     return fiberloop::run_group([] {
//       auto& group = *fiberloop::LoopGroup::current();
//       std::vector<fiberloop::Task<long>> parts;
//       for (std::size_t i = 0; i < group.size(); ++i) {
//         parts.push_back(group.spawn_on(i, [i] { return crunch(i); }));
//       }
//       long sum = 0;
//       for (auto& p : parts) sum += p.join();   // parks; the others run meanwhile
//       return sum == 42 ? 0 : 1;
//     });
//   }
#pragma once

#include <atomic>
#include <cstddef>
#include <iosfwd>
#include <memory>
#include <source_location>
#include <span>
#include <utility>
#include <vector>

#include "loop/loop.h"
#include "loop/options.h"

namespace fiberloop {

struct GroupOptions {
  // How many loops: 0 means one per CPU in the process's affinity mask
  // (sched_getaffinity), as Go's GOMAXPROCS does.
  std::size_t loops = 0;
  // Loop i's thread is pinned to the i-th CPU of that mask. Loops beyond the
  // mask run unpinned (the group says so once, on stderr).
  bool pin_threads = true;
  // Every loop's options.
  LoopOptions loop;
};

class LoopGroup {
 public:
  // Starts size() threads, each running a Loop that waits for work. The
  // threads block every signal, so that a process-wide signal goes to a
  // thread of yours (wait for it with wait_signal() on a loop, or sigwait
  // in a thread that unblocks it).
  // Throws: std::system_error if a thread cannot be started; what a Loop's
  //         constructor throws.
  explicit LoopGroup(GroupOptions options = {});
  // Stops every loop, cancels and unwinds every fiber on every loop (as
  // ~Loop does, in bounded time), and joins the threads.
  // Requires (checked: stops the process, saying so): not called from one
  // of the group's own fibers, loop threads or run_blocking jobs (it would
  // wait for itself); destroy the group from the thread that made it.
  ~LoopGroup();
  LoopGroup(const LoopGroup&) = delete;
  LoopGroup& operator=(const LoopGroup&) = delete;

  std::size_t size() const noexcept { return loops_.size(); }
  // Throws: std::out_of_range past size(), stating the size.
  Loop& loop(std::size_t i);

  // Spawns `fn` on loop i, from any thread, in or out of a fiber.
  // Throws: std::out_of_range past size(); std::logic_error once stopped.
  template <internal::Spawnable F>
  TaskFor<F> spawn_on(std::size_t i, F&& fn,
                      std::source_location where = std::source_location::current()) {
    return open_loop(i, "spawn_on").spawn(std::forward<F>(fn), where);
  }
  template <internal::Spawnable F>
  TaskFor<F> spawn_on(std::size_t i, SpawnOptions options, F&& fn,
                      std::source_location where = std::source_location::current()) {
    return open_loop(i, "spawn_on").spawn(std::move(options), std::forward<F>(fn), where);
  }
  // Any other arguments (spawn_on(i, f, 21)): one compile error that says
  // to capture them in a lambda, as Loop::spawn's.
  template <class... Args>
  requires(!internal::kValidSpawn<Args...>) auto spawn_on(std::size_t, Args&&...) {
    internal::reject_spawn_arguments<Args...>();
    return Task<void>{};
  }

  // Runs `main` on loop 0 and waits for it (a plain thread blocks; a fiber
  // parks); returns its value or rethrows its exception. May be called again:
  // the loops stay up until stop() or ~LoopGroup.
  // Throws: what `main` throws; std::runtime_error naming every parked fiber
  //         on every loop if the group deadlocks (Go's rule: no fiber can
  //         run on any loop, nothing is pending anywhere, and no thread but
  //         fiberloop's own exists); std::logic_error once stopped;
  //         Cancelled if stop() comes while `main` runs (it is cancelled
  //         with the rest of loop 0's fibers); std::logic_error on a loop's
  //         thread outside any fiber (it would block that loop).
  template <class F>
  auto run(F&& main, std::source_location where = std::source_location::current()) {
    check_may_wait("run", "for main");
    auto task = open_loop(0, "run").spawn(std::forward<F>(main), where);
    watch_for_deadlock(internal::TaskAccess::record(task));
    return task.join();
  }

  // Makes every loop's run return; each then closes as ~Loop does
  // (cancels and unwinds its fibers). Later spawn_on() and run() throw; a
  // Task spawned through loop(i) meanwhile is cancelled before it runs, and
  // joins are answered until ~LoopGroup. Loop::stop() on any of the group's
  // loops stops the whole group. Any thread.
  void stop() noexcept;

  // Loop::dump() of every loop, one after the other, each headed by its
  // index; each loop writes its own, in a fiber spawned there. Any thread
  // but a loop's outside a fiber (a fiber parks meanwhile; a plain thread
  // blocks). Nothing is written unless every loop answered.
  // Throws: std::logic_error on a loop's thread outside a fiber (it would
  //         block that loop), or once the group is stopped (its loops take
  //         no more work: dump before stop()); Cancelled or TimeoutError in
  //         a fiber.
  void dump(std::ostream& out);
  // Loop::stats() of every loop, by index, and their sum. As dump().
  std::vector<LoopStats> stats_per_loop();
  LoopStats stats();

  // The group of the calling thread's loop, or nullptr.
  static LoopGroup* current() noexcept;

 private:
  struct Member;  // a loop's thread and its Loop (loop_group.cc)
  Loop& open_loop(std::size_t i, const char* what);
  // The check of run(), dump() and stats(), before they spawn anything:
  // throws std::logic_error on a loop's thread outside any fiber, naming
  // LoopGroup::`what` and what it would wait `for_what`.
  static void check_may_wait(const char* what, const char* for_what);
  // When called from outside the group: waits for `main` to finish, and
  // throws the deadlock report if the group deadlocks first.
  void watch_for_deadlock(internal::FiberRecord* main);

  // Owned (an array from new[] and what it points to), freed by ~LoopGroup
  // once its threads are joined.
  std::span<Member*> loops_;
  std::atomic<bool> stopped_{false};
  // ~LoopGroup's word that the loops may be destroyed, and the count of
  // arrivals at the last step of their close (loop_group.cc).
  void release_loops() noexcept;
  std::atomic<bool> release_{false};
  std::shared_ptr<std::atomic<std::size_t>> drained_;
};

// LoopGroup group(options); return group.run(main): asyncio.run for every core.
template <class F>
auto run_group(F&& main, GroupOptions options = {},
               std::source_location where = std::source_location::current()) {
  LoopGroup group(std::move(options));
  return group.run(std::forward<F>(main), where);
}

}  // namespace fiberloop
