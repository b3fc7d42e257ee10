#include "tests/model/reference.h"

#include <algorithm>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fiberloop::model {
namespace {

enum class State { kReady, kRunning, kParked, kFinished };
enum class Result { kValue, kThrew, kCancelled };
// What a suspended fiber finishes when it runs again.
enum class Resume { kNothing, kYield, kSleep, kJoin, kEvent, kSend, kRecv };

struct Fiber {
  int script = 0;
  std::size_t pc = 0;
  State state = State::kReady;
  bool started = false;
  bool pending_cancel = false;
  bool notified = false;  // woken by what it waited for (not by a cancel)
  bool joined = false;
  bool detached = false;
  Result result = Result::kValue;
  Resume resume = Resume::kNothing;
  int wait_on = 0;           // the event, channel or fiber it waits for
  std::optional<int> got;    // a parked recv's value (nullopt: closed)
  bool send_closed = false;  // a parked send was ended by close()
  int send_value = 0;
  std::vector<int> children;
};

struct ChannelState {
  std::size_t capacity = 0;
  std::deque<int> buffer;
  std::deque<int> senders;  // parked fibers, first come first served
  std::deque<int> receivers;
  bool closed = false;
};

class Reference {
 public:
  explicit Reference(const Program& program) : program_(program) {
    fibers_.reserve(kMaxFibers);
    for (int c = 0; c < kChannels; ++c) channels_[c].capacity = kChannelCapacity[c];
  }

  Trace run() {
    if (!program_.scripts.empty()) spawn(0);
    run_scheduler();
    trace_.push_back("-- run returned");
    drop_task(0);
    for (std::size_t f = 0; f < fibers_.size(); ++f) {
      for (int child : fibers_[f].children) drop_task(child);
    }
    trace_.push_back("-- tasks dropped");
    // The loop's shutdown: cancel every fiber still alive, in spawn order,
    // and run until they are gone.
    while (!alive_.empty()) {
      for (int f : std::vector<int>(alive_)) cancel(f);
      run_scheduler();
    }
    trace_.push_back("-- loop destroyed");
    return std::move(trace_);
  }

 private:
  // ---- the scheduler -------------------------------------------------------

  // Iterations until nothing is ready and no timer is pending. Each one
  // expires the timers (every sleep is sleep_for(0): due by now), then runs
  // the fibers ready at its start; fibers pass control among themselves
  // and start further iterations without the scheduler while no timer is
  // pending.
  void run_scheduler() {
    while (!ready_.empty() || !timers_.empty()) {
      expire_timers();
      if (ready_.empty()) continue;
      budget_ = ready_.size();
      for (int f = pick_next(); f >= 0; f = pick_next()) resume(f);
    }
  }

  int pick_next() {
    for (;;) {
      if (budget_ == 0) {
        if (ready_.empty() || !timers_.empty()) return -1;  // back to the scheduler
        budget_ = ready_.size();
      }
      --budget_;
      const int f = ready_.front();
      ready_.pop_front();
      Fiber& x = fibers_[f];
      if (!x.started) {
        if (x.pending_cancel) {  // cancelled before it ran: it never does
          x.pending_cancel = false;
          finish(f, Result::kCancelled);
          continue;
        }
        x.started = true;
      }
      x.state = State::kRunning;
      return f;
    }
  }

  void expire_timers() {
    std::deque<int> due;
    due.swap(timers_);
    for (int f : due) wake(f);
  }

  void make_ready(int f) {
    fibers_[f].state = State::kReady;
    ready_.push_back(f);
  }

  void wake(int f) {
    fibers_[f].notified = true;
    if (fibers_[f].state == State::kParked) make_ready(f);
  }

  void park(int f, Resume what, int on) {
    Fiber& x = fibers_[f];
    x.state = State::kParked;
    x.notified = false;
    x.resume = what;
    x.wait_on = on;
  }

  // A cancel request: delivered at the fiber's next suspension point; a
  // parked fiber leaves what it waits for and is ready at once (a sleeping
  // one keeps its timer until it runs).
  void cancel(int f) {
    Fiber& x = fibers_[f];
    if (x.state == State::kFinished) return;
    x.pending_cancel = true;
    if (x.state != State::kParked) return;
    auto leave = [f](std::deque<int>& q) { q.erase(std::remove(q.begin(), q.end(), f), q.end()); };
    switch (x.resume) {
      case Resume::kEvent:
        leave(event_waiters_[x.wait_on]);
        break;
      case Resume::kJoin:
        leave(join_waiters_[x.wait_on]);
        break;
      case Resume::kSend:
        leave(channels_[x.wait_on].senders);
        break;
      case Resume::kRecv:
        leave(channels_[x.wait_on].receivers);
        break;
      default:
        break;
    }
    make_ready(f);
  }

  void finish(int f, Result result) {
    Fiber& x = fibers_[f];
    x.state = State::kFinished;
    x.result = result;
    alive_.erase(std::find(alive_.begin(), alive_.end(), f));
    std::deque<int> joiners;
    joiners.swap(join_waiters_[f]);
    for (int j : joiners) wake(j);
    if (x.detached && result == Result::kThrew) report(f);
  }

  void drop_task(int f) {
    if (fibers_.size() <= static_cast<std::size_t>(f)) return;
    Fiber& x = fibers_[f];
    if (x.state != State::kFinished) {
      x.detached = true;
    } else if (x.result == Result::kThrew && !x.joined) {
      report(f);
    }
  }

  void report(int f) { trace_.push_back("report f" + std::to_string(f)); }

  int spawn(int script) {
    const int f = static_cast<int>(fibers_.size());
    fibers_.emplace_back();
    fibers_[f].script = script;
    join_waiters_.emplace_back();
    alive_.push_back(f);
    make_ready(f);
    return f;
  }

  // ---- running a fiber -----------------------------------------------------

  // Runs fiber `f`, just picked, until it suspends or finishes: first the
  // end of the operation it suspended in, then its script.
  void resume(int f) {
    Fiber& x = fibers_[f];
    const Resume what = std::exchange(x.resume, Resume::kNothing);
    if (what == Resume::kYield) {
      if (x.pending_cancel) return die(f);
      record(f, "yield");
      ++x.pc;
    } else if (what != Resume::kNothing) {
      if (!x.notified) {  // woken by a cancel; a sleep takes its timer back
        if (what == Resume::kSleep) timers_.erase(std::find(timers_.begin(), timers_.end(), f));
        return die(f);
      }
      if (!complete_wait(f, what)) return;
      ++x.pc;
    }
    const std::vector<Op>& ops = program_.scripts[x.script];
    while (x.pc < ops.size()) {
      if (!start_op(f, ops[x.pc])) return;  // suspended, or finished
      ++x.pc;
    }
    record(f, "end");
    finish(f, Result::kValue);
  }

  // The end of a wait the fiber was woken from. Returns false if the fiber
  // finished.
  bool complete_wait(int f, Resume what) {
    Fiber& x = fibers_[f];
    const std::string on = std::to_string(x.wait_on);
    switch (what) {
      case Resume::kSleep:
        record(f, "sleep");
        return true;
      case Resume::kEvent:
        record(f, "event.wait " + on);
        return true;
      case Resume::kJoin:
        return join_result(f, x.wait_on);
      case Resume::kSend:
        record(f, "send " + on + " " + (x.send_closed ? "closed" : std::to_string(x.send_value)));
        return true;
      case Resume::kRecv:
        record(f, "recv " + on + " " + (x.got ? std::to_string(*x.got) : "closed"));
        return true;
      default:
        return true;
    }
  }

  // Starts one operation. Returns true if it completed and the script goes
  // on; false if the fiber suspended or finished.
  bool start_op(int f, Op op) {
    Fiber& x = fibers_[f];
    const int a = op.arg;
    switch (op.kind) {
      case OpKind::kYield:
        if (x.pending_cancel) return die(f), false;
        make_ready(f);
        x.resume = Resume::kYield;
        return false;
      case OpKind::kSleep:
        if (x.pending_cancel) return die(f), false;
        timers_.push_back(f);
        park(f, Resume::kSleep, 0);
        return false;
      case OpKind::kSpawn: {
        if (fibers_.size() == static_cast<std::size_t>(kMaxFibers)) {
          record(f, "spawn skipped");
          return true;
        }
        const int child = spawn(a);
        fibers_[f].children.push_back(child);
        record(f, "spawn f" + std::to_string(child));
        return true;
      }
      case OpKind::kJoin: {
        if (x.children.empty()) return record(f, "join none"), true;
        const int child = x.children[a % x.children.size()];
        if (fibers_[child].joined)
          return record(f, "join f" + std::to_string(child) + " twice"), true;
        if (fibers_[child].state == State::kFinished) return join_result(f, child);
        if (x.pending_cancel) return die(f), false;
        join_waiters_[child].push_back(f);
        park(f, Resume::kJoin, child);
        return false;
      }
      case OpKind::kCancel: {
        if (x.children.empty()) return record(f, "cancel none"), true;
        const int child = x.children[a % x.children.size()];
        cancel(child);
        record(f, "cancel f" + std::to_string(child));
        return true;
      }
      case OpKind::kThrow:
        record(f, "threw");
        finish(f, Result::kThrew);
        return false;
      case OpKind::kEventSet: {
        const int e = a % kEvents;
        event_set_[e] = true;
        std::deque<int> waiters;
        waiters.swap(event_waiters_[e]);
        for (int w : waiters) wake(w);
        record(f, "event.set " + std::to_string(e));
        return true;
      }
      case OpKind::kEventClear:
        event_set_[a % kEvents] = false;
        record(f, "event.clear " + std::to_string(a % kEvents));
        return true;
      case OpKind::kEventWait: {
        const int e = a % kEvents;
        if (event_set_[e]) return record(f, "event.wait " + std::to_string(e)), true;
        if (x.pending_cancel) return die(f), false;
        event_waiters_[e].push_back(f);
        park(f, Resume::kEvent, e);
        return false;
      }
      case OpKind::kSend:
        return send(f, a % kChannels);
      case OpKind::kRecv:
        return recv(f, a % kChannels);
      case OpKind::kClose: {
        const int c = a % kChannels;
        ChannelState& ch = channels_[c];
        if (!ch.closed) {
          ch.closed = true;
          for (int r : std::exchange(ch.receivers, {})) {
            fibers_[r].got.reset();
            wake(r);
          }
          for (int s : std::exchange(ch.senders, {})) {
            fibers_[s].send_closed = true;
            wake(s);
          }
        }
        record(f, "close " + std::to_string(c));
        return true;
      }
    }
    return true;
  }

  bool send(int f, int c) {
    Fiber& x = fibers_[f];
    ChannelState& ch = channels_[c];
    const int v = sent_value(f, static_cast<int>(x.pc));
    const std::string head = "send " + std::to_string(c) + " ";
    if (ch.closed) return record(f, head + "closed"), true;
    if (!ch.receivers.empty()) {
      const int r = ch.receivers.front();
      ch.receivers.pop_front();
      fibers_[r].got = v;
      wake(r);
      return record(f, head + std::to_string(v)), true;
    }
    if (ch.buffer.size() < ch.capacity) {
      ch.buffer.push_back(v);
      return record(f, head + std::to_string(v)), true;
    }
    if (x.pending_cancel) return die(f), false;
    x.send_value = v;
    x.send_closed = false;
    ch.senders.push_back(f);
    park(f, Resume::kSend, c);
    return false;
  }

  bool recv(int f, int c) {
    Fiber& x = fibers_[f];
    ChannelState& ch = channels_[c];
    const std::string head = "recv " + std::to_string(c) + " ";
    if (!ch.buffer.empty()) {
      const int v = ch.buffer.front();
      ch.buffer.pop_front();
      if (!ch.senders.empty()) {  // room now: a parked sender's value moves in
        const int s = ch.senders.front();
        ch.senders.pop_front();
        ch.buffer.push_back(fibers_[s].send_value);
        wake(s);
      }
      return record(f, head + std::to_string(v)), true;
    }
    if (!ch.senders.empty()) {  // unbuffered: straight from the sender
      const int s = ch.senders.front();
      ch.senders.pop_front();
      wake(s);
      return record(f, head + std::to_string(fibers_[s].send_value)), true;
    }
    if (ch.closed) return record(f, head + "closed"), true;
    if (x.pending_cancel) return die(f), false;
    x.got.reset();
    ch.receivers.push_back(f);
    park(f, Resume::kRecv, c);
    return false;
  }

  // join() on a finished child: its value, its exception caught, or its
  // Cancelled, which goes on up and ends the joiner too.
  bool join_result(int f, int child) {
    Fiber& c = fibers_[child];
    c.joined = true;
    const std::string who = "f" + std::to_string(child);
    switch (c.result) {
      case Result::kValue:
        record(f, "join " + who + " = " + std::to_string(child));
        return true;
      case Result::kThrew:
        record(f, "join " + who + " threw");
        return true;
      case Result::kCancelled:
        die(f);
        return false;
    }
    return true;
  }

  // Cancelled reaches the top of the fiber's script.
  void die(int f) {
    fibers_[f].pending_cancel = false;
    record(f, "cancelled");
    finish(f, Result::kCancelled);
  }

  void record(int f, const std::string& what) {
    trace_.push_back("f" + std::to_string(f) + "." + std::to_string(fibers_[f].pc) + " " + what);
  }

  const Program& program_;
  Trace trace_;
  std::vector<Fiber> fibers_;
  std::vector<std::deque<int>> join_waiters_;  // by fiber joined
  std::vector<int> alive_;                     // unfinished fibers, in spawn order
  std::deque<int> ready_;
  std::size_t budget_ = 0;
  std::deque<int> timers_;  // sleeping fibers, in the order they slept
  bool event_set_[kEvents] = {};
  std::deque<int> event_waiters_[kEvents];
  ChannelState channels_[kChannels];
};

}  // namespace

Trace run_reference(const Program& program) { return Reference(program).run(); }

}  // namespace fiberloop::model
