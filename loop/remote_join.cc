// A Task joined from another thread: a fiber of another loop parks, a
// plain thread blocks, on a Waiter that the finishing fiber's loop
// notifies. The join travels through that loop's cross-thread queue
// (task_posts.h), and a joiner that gives up (timed out, cancelled)
// withdraws it there.
#include <atomic>
#include <cstddef>
#include <functional>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "loop/internal/loop_parts.h"
#include "loop/internal/record_pool.h"
#include "loop/internal/spin_lock.h"
#include "loop/internal/task_posts.h"
#include "loop/internal/waiter.h"

namespace fiberloop::internal {
namespace {

// A join from elsewhere: shared by the joiner and the fiber's loop (the
// joiner may give up, cancelled, before the loop is done with it), freed by
// whichever lets go last.
struct RemoteJoin;
struct JoinDone : DoneWaiter {
  RemoteJoin* join = nullptr;
};

struct RemoteJoin : RemoteItem {
  FiberRecord* target = nullptr;
  Scheduler* target_loop = nullptr;  // target's loop when the join was posted,
  std::uint64_t target_serial = 0;   // and its serial (give_up posts there if it lives)
  // The target's loop as the joiner sees it, read when the join is posted:
  // in the joiner's group (that loop answers until the group is destroyed),
  // outside a group the joiner is in (the group's deadlock rule counts the
  // wait), and what Loop::dump() shows (join_detail()).
  bool same_group = false;
  bool beyond_group = false;
  std::int64_t wait_detail = 0;
  JoinDone done;  // in target->done_waiters until it finishes
  Waiter joiner;
  // Held around the notify and around the joiner's last look, so that the
  // joiner, however it woke (notified, cancelled, timed out), leaves only
  // once the target's loop is done touching it and its loop.
  SpinLock lock;
  bool abandoned = false;  // the joiner gave up; under `lock`
  std::atomic<int> refs{2};

  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  // On the target's loop, once it has finished.
  void finish() noexcept {
    {
      std::lock_guard guard(lock);
      if (!abandoned) joiner.notify();
    }
    release();
  }
  static void on_done(DoneWaiter& done) noexcept { static_cast<JoinDone&>(done).join->finish(); }
  // On the target's loop: finish now, or when the target does.
  static void answer(RemoteItem* item, bool /*drop: a join is answered regardless*/) {
    auto& join = *static_cast<RemoteJoin*>(item);
    FiberRecord& f = *join.target;
    if (f.finished() || f.state == FiberState::kAbandoned) return join.finish();
    join.done.on_done = &RemoteJoin::on_done;
    join.done.join = &join;
    f.done_waiters.push_back(join.done);
  }
};

// A joiner that gave up (timed out, cancelled) takes its node out of the
// target's done-waiters on the target's loop at once, instead of leaving it
// there until the target finishes: a joiner that retries with a timeout
// (LoopGroup::run's deadlock watch, a with_timeout loop) would pile one up
// per try. Holds the joiner's reference to the RemoteJoin. Posted after the
// join's own item, so it runs after answer().
struct WithdrawJoin : RemoteItem {
  RemoteJoin* join = nullptr;

  static void run(RemoteItem* item, bool /*drop: runs regardless*/) {
    auto* self = static_cast<WithdrawJoin*>(item);
    RemoteJoin& join = *self->join;
    if (join.done.linked()) {  // still waiting: finish() will not run now
      join.done.unlink();
      join.release();
    }
    join.release();
    delete self;
  }
};

// Lets go of the joiner's reference to `join`, which it gave up on: through
// a WithdrawJoin on the target's loop while that loop takes posts, else at
// once (the loop's shutdown finishes the target, or abandons it).
void give_up(RemoteJoin* join) noexcept {
  auto* withdraw = new (std::nothrow) WithdrawJoin;
  if (withdraw != nullptr) {
    withdraw->handle = &WithdrawJoin::run;
    withdraw->join = join;
    if (post_if_live(join->target_loop, join->target_serial, *withdraw) == PostOutcome::kPosted) {
      return;
    }
    delete withdraw;
  }
  join->release();
}

}  // namespace

namespace {

// The joiner's last look at `join`: once its target's loop is done with it
// (the lock), lets go of it, and of its node there if it was not notified.
// Returns: whether it was (the target finished).
bool leave(RemoteJoin* join) noexcept {
  bool notified;
  {
    std::lock_guard guard(join->lock);
    notified = join->joiner.was_notified();
    if (!notified) join->abandoned = true;
  }
  if (notified) {
    join->release();
  } else {
    give_up(join);
  }
  return notified;
}

// How often a plain thread blocked in a join looks at the task's done flag
// itself: from 1 ms, doubling, to 100 ms.
constexpr Duration kFirstDoneLook = std::chrono::milliseconds(1);
constexpr Duration kLastDoneLook = std::chrono::milliseconds(100);

// Posts a join of `f` (not finished) to its loop, for the calling fiber or
// plain thread (`what` names the call in the errors prepare() throws).
// Returns null if that loop is gone (then `f` has finished or was
// abandoned).
RemoteJoin* post_join(FiberRecord& f, const char* what) {
  auto* join = new RemoteJoin;
  join->handle = &RemoteJoin::answer;
  join->target = &f;
  try {
    join->joiner.prepare(what, /*interruptible=*/true);
  } catch (...) {
    delete join;
    throw;
  }
  join->target_loop = loop_of(f).load(std::memory_order_acquire);
  join->target_serial = f.pool->loop_serial();
  const LoopGroup* const here =
      join->joiner.fiber != nullptr ? join->joiner.fiber->scheduler->parts().group : nullptr;
  const auto look = [&](Scheduler& loop) {
    const LoopParts& there = loop.parts();
    join->same_group = here != nullptr && there.group == here;
    join->beyond_group = here != nullptr && there.group != here;
    join->wait_detail = join_detail(f.id, join->same_group ? there.index + 1 : kJoinedElsewhere);
  };
  if (!post_to_loop_of(f, *join, look)) {
    delete join;
    return nullptr;
  }
  return join;
}

// The fiber half of wait_from_elsewhere(): parks the joining fiber until
// the join is answered, `deadline` passes, or an interrupt comes.
//
// A loop of the joiner's own group answers until the group is destroyed.
// Any other loop may halt (run_until_complete's end, Loop::stop) just as
// the target finishes, and leave the join in its queue until it runs
// again: so the fiber also looks at the target's done flag now and then,
// as a plain thread does. (Not in the group: the timer would keep its
// loop from counting as stuck, and the group's deadlock rule from ever
// holding.)
//
// The answer's wake-up names the park it is for (Waiter::park), so each
// park's number is handed to the notifier under the join's lock, and a
// park is skipped only when no answer can come (the join is withdrawn
// under that lock first): a wake-up for a park that never happened would
// end the fiber's next one, whatever it waits for.
void park_joiner(RemoteJoin& join, TimePoint deadline) {
  FiberRecord& self = *join.joiner.fiber;
  FiberRecord& target = *join.target;
  if (target.done_flag.load(std::memory_order_acquire)) {
    std::lock_guard guard(join.lock);
    if (!join.joiner.was_notified()) {
      join.abandoned = true;  // no answer comes now: leave() gives the join up
      return;
    }
  }
  Scheduler& here = *self.scheduler;
  here.begin_remote_wait();
  if (join.beyond_group) here.begin_wait_beyond_group();
  Duration look = kFirstDoneLook;
  for (;;) {
    const TimePoint until = join.same_group ? deadline : std::min(deadline, Clock::now() + look);
    const auto end = here.park_waiter(until, WaitKind::kJoin, join.wait_detail);
    if (end != Scheduler::ParkEnd::kTimedOut) break;  // answered, or interrupted
    if (target.done_flag.load(std::memory_order_acquire) || Clock::now() >= deadline) break;
    if (Scheduler::interrupt_due(self)) break;  // it came as the look ended the park
    std::lock_guard guard(join.lock);
    if (join.joiner.was_notified()) break;  // its wake-up named the park just over
    join.joiner.park = self.park_seq;       // the next one
    look = std::min(look * 2, kLastDoneLook);
  }
  if (join.beyond_group) here.end_wait_beyond_group();
  here.end_remote_wait();
}

// Waits until `f` finishes, `deadline` passes, or (a fiber) an interrupt
// comes: a fiber of another loop parks, a plain thread blocks. Returns:
// whether it finished. Throws: std::logic_error on a loop's thread outside
// a fiber (it would block that loop).
bool wait_from_elsewhere(FiberRecord& f, TimePoint deadline) {
  if (f.done_flag.load(std::memory_order_acquire)) return true;
  RemoteJoin* join = post_join(f, "Task::join");
  if (join == nullptr) return true;  // its loop is gone: finished or abandoned
  // Finished meanwhile? The loop may have returned from run() before it
  // took the join, and would answer it only when it runs again. (The fence
  // pairs with the one a loop makes before it returns for want of work:
  // either that loop sees the post, or this sees the flag.)
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (join->joiner.fiber != nullptr) {
    park_joiner(*join, deadline);
  } else {
    if (f.done_flag.load(std::memory_order_acquire)) {
      (void)leave(join);
      return true;
    }
    // A plain thread blocks on the join's word, and looks at the flag now
    // and then.
    Duration look = kFirstDoneLook;
    while (!block_thread(join->joiner.state, Waiter::kWoken,
                         std::min(deadline, Clock::now() + look))) {
      if (f.done_flag.load(std::memory_order_acquire) || Clock::now() >= deadline) break;
      look = std::min(look * 2, kLastDoneLook);
    }
  }
  const bool notified = leave(join);
  return notified || f.done_flag.load(std::memory_order_acquire);
}

}  // namespace

bool Scheduler::wait_done_until(FiberRecord& f, TimePoint deadline) {
  return wait_from_elsewhere(f, deadline);
}

void Scheduler::wait_done_ticking(FiberRecord& f, Duration first,
                                  const std::function<Duration()>& tick) {
  if (f.done_flag.load(std::memory_order_acquire)) return;
  // Once: the ticks post nothing to the target's loop.
  RemoteJoin* join = post_join(f, "LoopGroup::run");  // a plain thread
  if (join == nullptr) return;
  Duration interval = first;
  try {
    // The done flag too, as a join's plain thread reads it: a loop that
    // stopped just as `f` finished leaves the join in its queue.
    while (!block_thread(join->joiner.state, Waiter::kWoken, Clock::now() + interval) &&
           !f.done_flag.load(std::memory_order_acquire)) {
      interval = tick();
    }
  } catch (...) {
    (void)leave(join);
    throw;
  }
  (void)leave(join);
}

void Scheduler::join_from_elsewhere(FiberRecord& f) {
  if (f.joined) throw_joined_twice(f);
  if (!wait_from_elsewhere(f, kNever)) {
    FiberRecord& self = *Scheduler::current()->running();
    self.scheduler->deliver_interrupt(self);  // what woke us
    throw std::logic_error("Task::join: woken before " + describe_fiber(f) + " finished");
  }
  if (f.state == FiberState::kAbandoned) throw_abandoned(f);
  f.joined = true;
  if (f.error) std::rethrow_exception(f.error);
}

}  // namespace fiberloop::internal
