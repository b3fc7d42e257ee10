#include "io/internal/by_deadline.h"

#include <atomic>
#include <cerrno>
#include <exception>
#include <string>
#include <system_error>
#include <thread>

#include "loop/internal/waiter.h"

namespace fiberloop::internal {
namespace {

// A question to the loop of the operation under way.
struct Ask {
  StreamDirection* direction;
  void (*reach)(DeadlineOp&, void*);
  void* arg;
  bool answered = false;  // false: the operation there is another loop's by now
  std::exception_ptr failed;
};

// On the asked loop's thread: the operation in the direction, if it is
// this loop's (then parked, or not yet resumed), is reached.
void reach_here(void* arg) noexcept {
  auto& ask = *static_cast<Ask*>(arg);
  const Scheduler* here = Scheduler::current();
  DeadlineOp* op = ask.direction->op.load(std::memory_order_acquire);
  if (op == claiming()) return;  // another loop's, naming itself
  if (op != nullptr && (ask.direction->loop.load(std::memory_order_relaxed) != here ||
                        ask.direction->serial.load(std::memory_order_relaxed) != here->serial())) {
    return;
  }
  ask.answered = true;
  if (op == nullptr) return;  // it has ended
  try {
    ask.reach(*op, ask.arg);
  } catch (...) {
    ask.failed = std::current_exception();
  }
}

}  // namespace

void throw_let_go(const char* op) {
  throw std::system_error(EBADF, std::generic_category(),
                          std::string(op) +
                              ": the stream let go of the operation while it waited (destroyed, "
                              "moved from, or assigned over)");
}

std::string refusal(const StreamDirection& direction, std::string busy) {
  const DeadlineOp* holder = direction.op.load(std::memory_order_acquire);
  const Scheduler* loop = direction.loop.load(std::memory_order_acquire);
  const std::uint64_t serial = direction.serial.load(std::memory_order_relaxed);
  if (holder != nullptr && holder != claiming() && loop != nullptr &&
      !scheduler_is_live(loop, serial)) {
    busy +=
        " (that fiber was abandoned by its loop's shutdown in the middle of its operation, "
        "which never ends: destroy the stream, or assign another over it)";
  }
  return busy;
}

void reach_operation_under_way(StreamDirection& direction, void (*reach)(DeadlineOp&, void*),
                               void* arg, bool free_abandoned) {
  for (;;) {
    DeadlineOp* op = direction.op.load(std::memory_order_seq_cst);
    if (op == nullptr) return;
    if (op == claiming()) {
      std::this_thread::yield();  // an operation names its loop: two stores
      continue;
    }
    Scheduler* const loop = direction.loop.load(std::memory_order_relaxed);
    const std::uint64_t serial = direction.serial.load(std::memory_order_relaxed);
    // Null: an operation outside any loop (about to be refused: no scope
    // outside a fiber), or read after the operation ended and another
    // began. Look again.
    if (loop == nullptr) {
      std::this_thread::yield();
      continue;
    }
    Ask ask{&direction, reach, arg, false, nullptr};
    const Scheduler* here = Scheduler::current();
    if (loop == here && serial == here->serial()) {
      reach_here(&ask);
    } else if (!call_on_loop_if_live(loop, serial, &reach_here, &ask)) {
      // That loop is gone: an operation still named there was abandoned
      // with its fiber, which never resumes (its stack is never reused).
      if (direction.loop.load(std::memory_order_relaxed) == loop &&
          direction.serial.load(std::memory_order_relaxed) == serial &&
          direction.op.load(std::memory_order_acquire) == op) {
        if (!free_abandoned) return;
        DeadlineOp* abandoned = op;
        if (direction.op.compare_exchange_strong(abandoned, nullptr, std::memory_order_acq_rel)) {
          return;
        }
      }
      continue;
    }
    if (ask.failed) std::rethrow_exception(ask.failed);
    if (ask.answered) return;
  }
}

}  // namespace fiberloop::internal
