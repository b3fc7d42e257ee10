#include "loop/loop.h"

#include <stdexcept>
#include <string>

#include "loop/internal/loop_core.h"
#include "loop/this_fiber.h"

namespace fiberloop {

Loop::Loop(LoopOptions options) : core_(std::make_unique<internal::LoopCore>(*this, options)) {}

Loop::~Loop() { core_->shutdown(); }

Loop* Loop::current() noexcept {
  internal::LoopCore* core = internal::LoopCore::current();
  return core != nullptr ? &core->owner() : nullptr;
}

void Loop::run() { core_->run(); }

void Loop::stop() noexcept { core_->stop(); }

void Loop::set_exception_handler(std::function<void(std::exception_ptr, const FiberInfo&)> handler) {
  core_->set_exception_handler(std::move(handler));
}

LoopStats Loop::stats() const {
  core_->check_thread("Loop::stats");
  return core_->stats();
}

namespace internal {

Loop& current_loop(const char* what) {
  LoopCore* core = LoopCore::current();
  if (core == nullptr) {
    throw std::logic_error(std::string(what) +
                           ": no Loop on this thread; create a fiberloop::Loop or use "
                           "fiberloop::run(main)");
  }
  return core->owner();
}

}  // namespace internal

namespace this_fiber {

void yield() {
  internal::LoopCore* core = internal::LoopCore::current();
  if (core == nullptr) {
    throw std::logic_error(
        "this_fiber::yield called outside a fiber (no Loop on this thread); call it from a "
        "fiber (spawn one, or use fiberloop::run(main))");
  }
  core->yield();
}

FiberId id() noexcept {
  internal::LoopCore* core = internal::LoopCore::current();
  internal::FiberRecord* f = core != nullptr ? core->running() : nullptr;
  return f != nullptr ? f->id : 0;
}

}  // namespace this_fiber
}  // namespace fiberloop
