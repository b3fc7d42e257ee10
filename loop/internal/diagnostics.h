// Debugging a loop from outside it: the stall detector's view of the loop
// (its heartbeat, whether it rests, the report the watchdog asks for), the
// list of every loop that debuggers read (tools/gdb/fiberloop.py), and the
// dump a signal asks for.
#pragma once

#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <memory>

#include "loop/options.h"

namespace fiberloop::internal {

struct LoopParts;
struct RemoteItem;
class Scheduler;
class StallWatchdog;

// Posts `item` to `scheduler`'s cross-thread queue if it is live (with
// `serial` nonzero, still the loop that had that serial), in one step with
// the check, so that a loop that closes meanwhile still runs it: a closing
// loop refuses posts (kClosing) before its last drain of them, and counts
// as gone only after it (Diagnostics::close_list_entry).
enum class PostOutcome : std::uint8_t { kPosted, kClosing, kGone };
PostOutcome post_if_live(Scheduler* scheduler, std::uint64_t serial, RemoteItem& item) noexcept;
// Whether `scheduler` (with `serial` nonzero, that loop) is listed and
// refusing posts: between its refusal and the end of its last drain. A
// later loop at the same address is not (it accepts posts).
bool refusing_posts(const Scheduler* scheduler, std::uint64_t serial) noexcept;

class Diagnostics {
 public:
  // Joins the list of loops, and starts the stall watchdog when `threshold`
  // (or, if zero, FIBERLOOP_STALL_THRESHOLD_MS) asks for one.
  // Throws: std::system_error if the watchdog thread cannot start.
  Diagnostics(LoopParts& parts, Duration threshold);
  // Stops the watchdog and leaves the list.
  ~Diagnostics();
  // The loop's last drain of what post_if_live() posted (LoopParts::shutdown):
  // refuses further posts (post_if_live() says kClosing), runs `drain`,
  // then leaves the list of live loops (scheduler_is_live() is false from
  // then on), so that a caller refused meanwhile waits only for that drain.
  template <class Drain>
  void close_list_entry(Drain drain) noexcept {
    refuse_posts();
    drain();
    unlist();
  }
  Diagnostics(const Diagnostics&) = delete;
  Diagnostics& operator=(const Diagnostics&) = delete;

  // ---- the stall detector (any thread) ----
  // Moves whenever the loop makes progress: switches, iterations, callbacks.
  std::uint64_t heartbeat() const noexcept;
  // True unless the run loop is on the stack and not blocked in its poll: a
  // loop that is idle, or not running, is not stalled.
  bool resting() const noexcept;
  // The run loop enters or leaves (the loop thread).
  void set_running(bool running) noexcept { running_.store(running, std::memory_order_relaxed); }
  // The watchdog asks the loop thread to report a stall of `so_far`, seen at
  // heartbeat `beat` (dropped if the loop moved since).
  void request_stall_report(Duration so_far, std::uint64_t beat) noexcept;
  // The loop thread's signal handler: prints what is stalled and the thread's
  // backtrace to stderr, if the watchdog asked. Async-signal-safe as far as
  // glibc's backtrace() is (primed when the watchdog starts).
  void report_stall_from_signal() noexcept;
  Duration stall_threshold() const noexcept { return threshold_; }

 private:
  LoopParts& parts_;
  Duration threshold_{};
  std::atomic<bool> running_{false};
  std::atomic<bool> stall_report_requested_{false};
  std::atomic<std::int64_t> stall_so_far_ms_{0};
  std::atomic<std::uint64_t> stall_beat_{0};
  std::unique_ptr<StallWatchdog> watchdog_;

  // The list of every loop of the process, for debuggers: a global, as
  // thread-locals are not always readable from a core file.
  friend struct DebugList;
  friend bool scheduler_is_live(const Scheduler* scheduler) noexcept;
  friend bool scheduler_is_live(const Scheduler* scheduler, std::uint64_t serial) noexcept;
  friend PostOutcome post_if_live(Scheduler* scheduler, std::uint64_t serial,
                                  RemoteItem& item) noexcept;
  friend bool refusing_posts(const Scheduler* scheduler, std::uint64_t serial) noexcept;
  void refuse_posts() noexcept;
  void unlist() noexcept;
  const Scheduler* debug_scheduler_;
  bool refuses_posts_ = false;  // under the list's lock
  long debug_lwp_ = 0;          // the loop thread's kernel id (gettid)
  Diagnostics* debug_next_ = nullptr;
};

// The head of the list of every loop (Diagnostics::debug_next_).
extern Diagnostics* debug_loop_list;

class RemoteQueue;
// Stops Loop::dump_on_signal() dumps of the loop of `remote` (it is going away).
void forget_dump_signal(RemoteQueue& remote) noexcept;

}  // namespace fiberloop::internal
