// What TaskGroup and Nursery share: the set of running children, the first
// failure, cancelling the rest, and waiting for them (structured
// concurrency). A child is watched through a node in its fiber's
// done-waiters, recycled when it finishes, so a group's memory follows how
// many children run at once, not how many ever ran.
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "loop/internal/fiber_record.h"
#include "loop/internal/intrusive_list.h"
#include "loop/internal/scheduler.h"
#include "loop/loop.h"
#include "sync/internal/waiters.h"

namespace fiberloop::internal {

class GroupCore {
 public:
  // What becomes of a failed child's exception: a TaskGroup leaves it in
  // the child (its Task rethrows it too); a Nursery takes it.
  enum class Errors { kCopy, kTake };

  // Throws: std::logic_error outside a fiber (`what` names the class).
  GroupCore(const char* what, Errors errors);
  GroupCore(const GroupCore&) = delete;
  GroupCore& operator=(const GroupCore&) = delete;

  Loop& loop() noexcept { return loop_; }
  // Throws std::logic_error once joined or cancelling, or from another
  // thread.
  void check_open(const char* op) const;
  // Throws std::logic_error from another loop's thread.
  void check_thread(const char* op) const { scheduler_.check_thread(op); }
  // Watches `child` (just spawned on this loop) until it finishes.
  void adopt(FiberRecord& child);
  // Children not finished yet.
  std::size_t running() const noexcept { return running_; }

  // The owner's join: waits for every child; rethrows the first failure. If
  // the owner is interrupted, cancels the children, waits for them, and
  // throws that interruption.
  void join(const char* op);
  // The owner's destructor: if not joined, cancels the children when an
  // exception is leaving the owner's scope, or when the owner is cancelled
  // or times out while waiting (the interrupt is delivered again at its next
  // wait), waits for them, and reports a failure nobody can receive any more.
  // `exceptions_at_start`: the owner's std::uncaught_exceptions() when it was made.
  void close(int exceptions_at_start, const char* name) noexcept;
  void cancel() noexcept;
  bool joined() const noexcept { return joined_; }
  // A failure cancelled the owner before it joined (asyncio's rule), and
  // join() has not run since.
  bool failure_cancelled_owner() const noexcept { return cancelled_owner_; }

 private:
  // A running child: in its fiber's done-waiters and in `children_`.
  struct ChildTag {};
  struct Child : DoneWaiter, ListHook<ChildTag> {
    GroupCore* group = nullptr;
    FiberRecord* record = nullptr;
  };
  static void child_finished(DoneWaiter& done) noexcept;
  // A child has finished: its failure, if any, is the group's.
  void observe(FiberRecord& child) noexcept;
  void failed(std::exception_ptr error, const FiberRecord& child) noexcept;
  void wait_children(bool interruptible, const char* op);
  // Reports the first failure, which nobody can receive now, as the failed
  // child's, its name followed by `why`.
  void report_first_error(const std::string& why) noexcept;

  Loop& loop_;
  Scheduler& scheduler_;
  FiberRecord& owner_;      // the fiber that made the group...
  const FiberId owner_id_;  // ...while its record has this id (records are reused)
  const Errors errors_;
  IntrusiveList<Child, ChildTag> children_;  // running
  std::vector<std::unique_ptr<Child>> nodes_;
  Child* free_ = nullptr;  // nodes to reuse, linked through `record`
  std::size_t running_ = 0;
  WaitQueue idle_{WaitKind::kJoin};  // the owner, waiting for running_ == 0
  std::exception_ptr first_error_;
  FiberInfo first_failed_;  // the child that failed first, for the report
  bool joining_ = false;
  bool joined_ = false;
  bool cancelling_ = false;       // cancel() ran: a failure, the owner's interrupt, or asked
  bool cancelled_owner_ = false;  // failed() cancelled the owner
};

}  // namespace fiberloop::internal
