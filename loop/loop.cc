#include "loop/loop.h"

#include <stdexcept>
#include <string>

#include "loop/internal/loop_core.h"

namespace fiberloop {

Loop::Loop(LoopOptions options) : core_(std::make_unique<internal::LoopCore>(*this, options)) {}

Loop::~Loop() { core_->shutdown(); }

Loop* Loop::current() noexcept {
  internal::LoopCore* core = internal::LoopCore::current();
  return core != nullptr ? &core->owner() : nullptr;
}

void Loop::run() { core_->run(); }

void Loop::stop() noexcept { core_->stop(); }

void Loop::set_exception_handler(
    std::function<void(std::exception_ptr, const FiberInfo&)> handler) {
  core_->set_exception_handler(std::move(handler));
}

LoopStats Loop::stats() const {
  core_->check_thread("Loop::stats");
  return core_->stats();
}

namespace internal {

void throw_no_loop(const char* what) {
  throw std::logic_error(std::string(what) +
                         ": no Loop on this thread (called outside a fiber); create a "
                         "fiberloop::Loop or use fiberloop::run(main)");
}

}  // namespace internal

}  // namespace fiberloop
