#include "loop/internal/waiter.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

namespace fiberloop::internal {

namespace {

thread_local const char tls_thread_identity = 0;

}  // namespace

bool block_thread(std::atomic<std::uint32_t>& word, std::uint32_t until, TimePoint deadline) {
  for (;;) {
    const std::uint32_t now = word.load(std::memory_order_acquire);
    if (now >= until) return true;
    timespec timeout{};
    timespec* timeout_ptr = nullptr;
    if (deadline != kNever) {
      const Duration left = time_until(deadline, Clock::now());
      if (left <= Duration::zero()) return word.load(std::memory_order_acquire) >= until;
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      timeout.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      timeout.tv_nsec = static_cast<long>(ns % 1'000'000'000);
      timeout_ptr = &timeout;
    }
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, now,
              timeout_ptr, nullptr, 0);
  }
}

void wake_thread(std::atomic<std::uint32_t>& word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr,
            nullptr, 0);
}

const void* caller_identity() noexcept {
  Scheduler* scheduler = Scheduler::current();
  FiberRecord* fiber = scheduler != nullptr ? scheduler->running() : nullptr;
  if (fiber != nullptr) return fiber;
  return &tls_thread_identity;
}

void Waiter::prepare_thread(const Scheduler* scheduler, const char* what) {
  if (scheduler != nullptr) {
    throw std::logic_error(std::string(what) +
                           " must wait, but was called on a loop's thread outside any fiber (a "
                           "callback, or before run()): it would block the loop; call it from "
                           "a fiber");
  }
  who = &tls_thread_identity;
}

void Wake::wake_word() const noexcept {
  word->store(Waiter::kWoken, std::memory_order_release);
  wake_thread(*word);  // the word may be gone by now: a futex wake only names it
}

}  // namespace fiberloop::internal
