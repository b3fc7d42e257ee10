#include "fiber/internal/overflow_guard.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "fiber/internal/check.h"
#include "fiber/internal/stack_pool.h"

namespace fiberloop::internal {
namespace {

constexpr std::size_t kAltStackBytes = 64 * 1024;

struct sigaction previous_action;
thread_local void* alt_stack = nullptr;

void on_segv(int sig, siginfo_t* info, void* context) {
  std::size_t stack_bytes = 0;
  if (StackPool::this_thread_if_any() != nullptr &&
      StackPool::this_thread_if_any()->guard_page_of(info->si_addr, &stack_bytes)) {
    char who[160] = "a fiber";
    describe_running_fiber(who, sizeof who);
    write_stderr("fiberloop: stack overflow in ");
    write_stderr(who);
    write_stderr(" (stack ");
    write_stderr_number(stack_bytes / 1024);
    write_stderr(" KiB; raise StackOptions::size or SpawnOptions::stack)\n");
    ::signal(SIGABRT, SIG_DFL);
    std::abort();
  }
  // Not ours: hand it on.
  if (previous_action.sa_flags & SA_SIGINFO) {
    if (previous_action.sa_sigaction != nullptr)
      return previous_action.sa_sigaction(sig, info, context);
  } else if (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN &&
             previous_action.sa_handler != nullptr) {
    return previous_action.sa_handler(sig);
  }
  // The default action: restore it and return, so the fault happens again.
  ::signal(SIGSEGV, SIG_DFL);
}

}  // namespace

void install_overflow_guard() noexcept {
  static const bool installed = [] {
    struct sigaction sa {};
    sa.sa_sigaction = &on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    return ::sigaction(SIGSEGV, &sa, &previous_action) == 0;
  }();
  (void)installed;
  if (alt_stack != nullptr) return;
  stack_t current{};
  if (::sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE)) return;  // has one
  void* mem =
      ::mmap(nullptr, kAltStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;
  stack_t ss{};
  ss.ss_sp = mem;
  ss.ss_size = kAltStackBytes;
  if (::sigaltstack(&ss, nullptr) != 0) {
    ::munmap(mem, kAltStackBytes);
    return;
  }
  alt_stack = mem;
}

void remove_overflow_guard() noexcept {
  if (alt_stack == nullptr) return;
  stack_t ss{};
  ss.ss_flags = SS_DISABLE;
  ::sigaltstack(&ss, nullptr);
  ::munmap(alt_stack, kAltStackBytes);
  alt_stack = nullptr;
}

}  // namespace fiberloop::internal
