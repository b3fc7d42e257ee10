#include "fiber/internal/check.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace fiberloop::internal {
namespace {

std::atomic<FiberDescriber> describer{nullptr};

}  // namespace

void write_stderr(const char* s) noexcept {
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, s, std::strlen(s));
}

void write_stderr_number(std::size_t v) noexcept {
  char buf[24];
  char* p = buf + sizeof buf;
  *--p = '\0';
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  write_stderr(p);
}

void set_fiber_describer(FiberDescriber d) noexcept {
  describer.store(d, std::memory_order_relaxed);
}

void describe_running_fiber(char* buf, std::size_t cap) noexcept {
  if (FiberDescriber d = describer.load(std::memory_order_relaxed)) d(buf, cap);
}

void check_failed(const char* condition, const char* message, const char* file, int line,
                  const char* detail) noexcept {
  char running[192] = "no fiber (the scheduler, or a thread without a loop)";
  describe_running_fiber(running, sizeof running);
  write_stderr("fiberloop: internal check failed at ");
  write_stderr(file);
  write_stderr(":");
  write_stderr_number(static_cast<std::size_t>(line));
  write_stderr(": ");
  write_stderr(condition);
  write_stderr(" (");
  write_stderr(message);
  write_stderr(")");
  if (detail != nullptr) {
    write_stderr("; ");
    write_stderr(detail);
  }
  write_stderr("; running: ");
  write_stderr(running);
  write_stderr(". This is a bug in fiberloop or memory corruption; please report it.\n");
  std::abort();
}

}  // namespace fiberloop::internal
