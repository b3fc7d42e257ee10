#include "sync/wait_group.h"

#include <stdexcept>

namespace fiberloop {

void WaitGroup::done() {
  waiters_.check("WaitGroup::done");
  if (count_ == 0) {
    throw std::logic_error("WaitGroup::done: called more often than add() counted");
  }
  if (--count_ == 0) waiters_.notify_all();
}

void WaitGroup::wait() {
  waiters_.check("WaitGroup::wait");
  if (count_ != 0) waiters_.wait("WaitGroup::wait");
}

}  // namespace fiberloop
