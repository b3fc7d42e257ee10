// Loop, the public face of a loop's parts (loop/internal/loop_parts.h).
#include "loop/loop.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#include "loop/internal/loop_parts.h"

namespace fiberloop {

Loop::Loop(LoopOptions options)
    : parts_(new internal::LoopParts(*this, options)), scheduler_(&parts_->scheduler) {
  if (const char* v = std::getenv("FIBERLOOP_DUMP_ON_SIGQUIT"); v != nullptr && *v == '1') {
    try {
      dump_on_signal(SIGQUIT);
    } catch (const std::exception& e) {  // the environment asked: say why not, and go on
      std::fprintf(stderr, "fiberloop: FIBERLOOP_DUMP_ON_SIGQUIT: this loop will not dump: %s\n",
                   e.what());
    }
  }
}

Loop::~Loop() noexcept(false) {
  if (parts_->group != nullptr && !parts_->group_releases) {
    throw std::logic_error("~Loop: loop " + std::to_string(parts_->index) +
                           " belongs to a LoopGroup, which owns it; destroy the LoopGroup instead");
  }
  if (internal::Scheduler::current() != scheduler_) {
    std::fprintf(stderr,
                 "fiberloop: a Loop was destroyed on a thread that is not its own; destroy it "
                 "on the thread that made it (its fibers' stacks and state live there)\n");
    std::abort();
  }
  internal::forget_dump_signal(parts_->remote);
  parts_->shutdown();
  delete parts_;
}

std::size_t Loop::index() const noexcept { return parts_->index; }

Loop* Loop::current() noexcept {
  internal::Scheduler* scheduler = internal::Scheduler::current();
  return scheduler != nullptr ? &scheduler->owner() : nullptr;
}

void Loop::run() {
  scheduler_->check_thread("Loop::run");
  if (scheduler_->running() != nullptr || parts_->running()) {
    throw std::logic_error(
        "Loop::run: the loop is already running (called from a fiber or a "
        "callback); spawn a fiber instead");
  }
  (void)parts_->run(nullptr);
}

void Loop::stop() noexcept { parts_->remote.stop(); }

void Loop::set_exception_handler(
    std::function<void(std::exception_ptr, const FiberInfo&)> handler) {
  scheduler_->set_exception_handler(std::move(handler));
}

TimerHandle Loop::call_soon(std::function<void()> fn) {
  return parts_->callbacks.call_soon(std::move(fn));
}

TimerHandle Loop::call_later(Duration delay, std::function<void()> fn) {
  scheduler_->check_thread("Loop::call_later");
  return parts_->callbacks.call_at(internal::deadline_from_now(delay), std::move(fn));
}

TimerHandle Loop::call_at(TimePoint when, std::function<void()> fn) {
  return parts_->callbacks.call_at(when, std::move(fn));
}

void Loop::call_soon_threadsafe(std::function<void()> fn) { parts_->remote.post(std::move(fn)); }

Loop::KeepAlive Loop::keep_alive() noexcept {
  parts_->remote.add_keep_alive();
  return KeepAlive(parts_);
}

Loop::KeepAlive& Loop::KeepAlive::operator=(KeepAlive&& other) noexcept {
  if (this != &other) {
    if (parts_ != nullptr) parts_->remote.drop_keep_alive();
    parts_ = std::exchange(other.parts_, nullptr);
  }
  return *this;
}

Loop::KeepAlive::~KeepAlive() {
  if (parts_ != nullptr) parts_->remote.drop_keep_alive();
}

void Loop::add_reader(int fd, std::function<void()> fn) {
  scheduler_->check_thread("Loop::add_reader");
  if (scheduler_->closing()) return;  // dropped, as call_soon's callbacks are
  parts_->reactor.set_fd_callback(fd, internal::Interest::kRead, std::move(fn));
}

bool Loop::remove_reader(int fd) {
  scheduler_->check_thread("Loop::remove_reader");
  return parts_->reactor.set_fd_callback(fd, internal::Interest::kRead, nullptr);
}

void Loop::add_writer(int fd, std::function<void()> fn) {
  scheduler_->check_thread("Loop::add_writer");
  if (scheduler_->closing()) return;  // dropped, as call_soon's callbacks are
  parts_->reactor.set_fd_callback(fd, internal::Interest::kWrite, std::move(fn));
}

bool Loop::remove_writer(int fd) {
  scheduler_->check_thread("Loop::remove_writer");
  return parts_->reactor.set_fd_callback(fd, internal::Interest::kWrite, nullptr);
}

LoopStats Loop::stats(bool with_stack_high_water) const {
  scheduler_->check_thread("Loop::stats");
  LoopStats s = parts_->stats();
  if (with_stack_high_water) s.stack_high_water = parts_->stack_high_water();
  return s;
}

Backend Loop::backend() const noexcept { return parts_->reactor.poller().backend(); }

std::size_t Loop::stack_high_water() const {
  scheduler_->check_thread("Loop::stack_high_water");
  return parts_->stack_high_water();
}

void Loop::dump(std::ostream& out) const {
  scheduler_->check_thread("Loop::dump");
  parts_->dump(out);
}

std::size_t LoopOptions::default_blocking_threads() noexcept {
  const std::size_t cpus = std::thread::hardware_concurrency();
  return std::min<std::size_t>(32, (cpus == 0 ? 1 : cpus) + 4);
}

}  // namespace fiberloop
