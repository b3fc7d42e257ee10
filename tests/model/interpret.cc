#include "tests/model/interpret.h"

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "fiberloop.h"
#include "tests/model/reference.h"

namespace fiberloop::model {
namespace {

class Interpreter {
 public:
  explicit Interpreter(const Program& program) : program_(program) {
    children_.reserve(kMaxFibers);
    child_index_.reserve(kMaxFibers);
  }

  Trace run() {
    {
      Loop loop;
      loop_ = &loop;
      loop.set_exception_handler([this](std::exception_ptr, const FiberInfo& info) {
        trace_.push_back("report f" + std::to_string(index_of_.at(info.id)));
      });
      if (!program_.scripts.empty()) main_ = spawn_script(0);
      loop.run();
      trace_.push_back("-- run returned");
      main_ = Task<int>{};
      for (auto& tasks : children_) {
        for (auto& t : tasks) t = Task<int>{};
      }
      trace_.push_back("-- tasks dropped");
    }  // ~Loop cancels and unwinds what is left
    trace_.push_back("-- loop destroyed");
    return std::move(trace_);
  }

 private:
  Task<int> spawn_script(int script) {
    const int me = fibers_++;
    children_.emplace_back();
    child_index_.emplace_back();
    Task<int> t = loop_->spawn([this, script, me] { return body(script, me); });
    index_of_[t.id()] = me;
    return t;
  }

  int body(int script, int me) {
    const std::vector<Op>& ops = program_.scripts[script];
    std::size_t pc = 0;
    try {
      for (; pc < ops.size(); ++pc) step(me, static_cast<int>(pc), ops[pc]);
    } catch (const Cancelled&) {
      record(me, pc, "cancelled");
      throw;
    } catch (const std::runtime_error&) {
      record(me, pc, "threw");
      throw;
    }
    record(me, pc, "end");
    return me;
  }

  void step(int me, int pc, Op op) {
    const int a = op.arg;
    switch (op.kind) {
      case OpKind::kYield:
        this_fiber::yield();
        return record(me, pc, "yield");
      case OpKind::kSleep:
        this_fiber::sleep_for(Duration::zero());
        return record(me, pc, "sleep");
      case OpKind::kSpawn: {
        if (fibers_ == kMaxFibers) return record(me, pc, "spawn skipped");
        Task<int> t = spawn_script(a);
        const int child = fibers_ - 1;
        children_[me].push_back(std::move(t));
        child_index_[me].push_back(child);
        return record(me, pc, "spawn f" + std::to_string(child));
      }
      case OpKind::kJoin: {
        if (children_[me].empty()) return record(me, pc, "join none");
        const std::size_t c = a % children_[me].size();
        const std::string who = "f" + std::to_string(child_index_[me][c]);
        try {
          const int v = children_[me][c].join();
          return record(me, pc, "join " + who + " = " + std::to_string(v));
        } catch (const std::logic_error&) {
          return record(me, pc, "join " + who + " twice");
        } catch (const std::runtime_error&) {
          return record(me, pc, "join " + who + " threw");
        }
      }
      case OpKind::kCancel: {
        if (children_[me].empty()) return record(me, pc, "cancel none");
        const std::size_t c = a % children_[me].size();
        children_[me][c].cancel();
        return record(me, pc, "cancel f" + std::to_string(child_index_[me][c]));
      }
      case OpKind::kThrow:
        throw std::runtime_error("thrown by the program");
      case OpKind::kEventSet:
        events_[a % kEvents].set();
        return record(me, pc, "event.set " + std::to_string(a % kEvents));
      case OpKind::kEventClear:
        events_[a % kEvents].clear();
        return record(me, pc, "event.clear " + std::to_string(a % kEvents));
      case OpKind::kEventWait:
        events_[a % kEvents].wait();
        return record(me, pc, "event.wait " + std::to_string(a % kEvents));
      case OpKind::kSend: {
        const int c = a % kChannels;
        const int v = sent_value(me, pc);
        try {
          channel(c).send(v);
          return record(me, pc, "send " + std::to_string(c) + " " + std::to_string(v));
        } catch (const ChannelClosed&) {
          return record(me, pc, "send " + std::to_string(c) + " closed");
        }
      }
      case OpKind::kRecv: {
        const int c = a % kChannels;
        const std::optional<int> v = channel(c).recv();
        return record(me, pc,
                      "recv " + std::to_string(c) + " " + (v ? std::to_string(*v) : "closed"));
      }
      case OpKind::kClose:
        channel(a % kChannels).close();
        return record(me, pc, "close " + std::to_string(a % kChannels));
    }
  }

  void record(int me, std::size_t pc, const std::string& what) {
    trace_.push_back("f" + std::to_string(me) + "." + std::to_string(pc) + " " + what);
  }

  Channel<int>& channel(int c) { return c == 0 ? unbuffered_ : buffered_; }

  const Program& program_;
  Trace trace_;
  // Declared before the Loop is made (in run()), so they outlive its shutdown.
  Event events_[kEvents];
  Channel<int> unbuffered_{kChannelCapacity[0]};
  Channel<int> buffered_{kChannelCapacity[1]};
  Loop* loop_ = nullptr;
  Task<int> main_;
  std::vector<std::vector<Task<int>>> children_;  // by fiber, in spawn order
  std::vector<std::vector<int>> child_index_;     // the same children, as fiber numbers
  std::unordered_map<FiberId, int> index_of_;     // the loop's fiber ids -> ours
  int fibers_ = 0;
};

}  // namespace

Trace run_on_fiberloop(const Program& program) { return Interpreter(program).run(); }

std::string compare_with_reference(const Program& program) {
  const Trace actual = run_on_fiberloop(program);
  const Trace expected = run_reference(program);
  if (actual == expected) return {};
  std::string out = "fiberloop and the reference model disagree on\n" + to_string(program);
  const std::size_t n = std::max(actual.size(), expected.size());
  for (std::size_t i = 0; i < n; ++i) {
    const std::string a = i < actual.size() ? actual[i] : "(nothing)";
    const std::string e = i < expected.size() ? expected[i] : "(nothing)";
    out += (a == e ? "   " : ">> ") + a;
    if (a != e) out += "    (model: " + e + ")";
    out += '\n';
  }
  return out;
}

}  // namespace fiberloop::model
