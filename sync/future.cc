#include "sync/future.h"

namespace fiberloop::internal {

void call_soon_on(Loop& loop, std::function<void()> fn) {
  Scheduler* here = Scheduler::current();
  if (here != nullptr && &here->owner() == &loop) {
    (void)loop.call_soon(std::move(fn));
  } else {
    loop.call_soon_threadsafe(std::move(fn));
  }
}

}  // namespace fiberloop::internal
