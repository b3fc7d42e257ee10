#include "loop/loop.h"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#include "loop/internal/deadline.h"
#include "loop/internal/loop_core.h"

namespace fiberloop {

Loop::Loop(LoopOptions options) : core_(std::make_unique<internal::LoopCore>(*this, options)) {
  if (const char* v = std::getenv("FIBERLOOP_DUMP_ON_SIGQUIT"); v != nullptr && *v == '1') {
    dump_on_signal(SIGQUIT);
  }
}

Loop::~Loop() {
  internal::forget_dump_signal(*core_);
  core_->shutdown();
}

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

TimerHandle Loop::call_soon(std::function<void()> fn) { return core_->call_soon(std::move(fn)); }

TimerHandle Loop::call_later(Duration delay, std::function<void()> fn) {
  return core_->call_at(internal::deadline_after(delay), std::move(fn));
}

TimerHandle Loop::call_at(TimePoint when, std::function<void()> fn) {
  return core_->call_at(when, std::move(fn));
}

void Loop::call_soon_threadsafe(std::function<void()> fn) {
  core_->call_soon_threadsafe(std::move(fn));
}

Loop::KeepAlive Loop::keep_alive() noexcept {
  core_->add_keep_alive();
  return KeepAlive(core_.get());
}

Loop::KeepAlive& Loop::KeepAlive::operator=(KeepAlive&& other) noexcept {
  if (this != &other) {
    if (core_ != nullptr) core_->drop_keep_alive();
    core_ = std::exchange(other.core_, nullptr);
  }
  return *this;
}

Loop::KeepAlive::~KeepAlive() {
  if (core_ != nullptr) core_->drop_keep_alive();
}

std::size_t LoopOptions::default_blocking_threads() noexcept {
  const std::size_t cpus = std::thread::hardware_concurrency();
  return std::min<std::size_t>(32, (cpus == 0 ? 1 : cpus) + 4);
}

LoopStats Loop::stats(bool with_stack_high_water) const {
  core_->check_thread("Loop::stats");
  LoopStats s = core_->stats();
  if (with_stack_high_water) s.stack_high_water = core_->stack_high_water();
  return s;
}

namespace internal {

void throw_no_loop(const char* what) {
  throw std::logic_error(std::string(what) +
                         ": no Loop on this thread (called outside a fiber); create a "
                         "fiberloop::Loop or use fiberloop::run(main)");
}

}  // namespace internal

}  // namespace fiberloop
