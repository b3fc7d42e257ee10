#include "sync/internal/home_loop.h"

#include <stdexcept>
#include <string>

namespace fiberloop::internal {

void HomeLoop::adopt_or_throw(LoopCore* here, const char* what) {
  if (here != nullptr && (loop_ == nullptr || !loop_is_live(loop_))) {
    loop_ = here;
    return;
  }
  std::string message(what);
  message += here == nullptr ? ": called from a thread with no Loop, "
                             : ": called from another Loop's thread, ";
  message +=
      "but this primitive belongs to the loop of another thread (fiberloop's primitives work "
      "within one loop); hand the call to that loop with Loop::call_soon_threadsafe()";
  throw std::logic_error(message);
}

}  // namespace fiberloop::internal
