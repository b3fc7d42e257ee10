#include "loop/internal/format.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iterator>

namespace fiberloop::internal {
namespace {

// Appends to a NUL-terminated buffer, by hand (async-signal-safe).
class Writer {
 public:
  Writer(char* buf, std::size_t cap) noexcept : buf_(buf), cap_(cap) {
    if (cap_ != 0) buf_[0] = '\0';
  }
  void put(char c) noexcept {
    if (n_ + 1 < cap_) {
      buf_[n_++] = c;
      buf_[n_] = '\0';
    }
  }
  void put(std::string_view s) noexcept {
    for (char c : s) put(c);
  }
  void put_number(unsigned long long v) noexcept {
    char digits[24];
    int d = 0;
    do {
      digits[d++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (d > 0) put(digits[--d]);
  }
  std::size_t size() const noexcept { return n_; }

 private:
  char* buf_;
  std::size_t cap_;
  std::size_t n_ = 0;
};

}  // namespace

// By FiberState and WaitKind. tools/gdb/fiberloop.py reads these arrays from
// the process, so the dump and the debugger never say it differently.
const char* const kFiberStateNames[] = {"ready", "running", "parked", "finished", "abandoned"};
const char* const kWaitKindNames[] = {
    "parked",
    "joining",
    "sleeping",
    "reading fd",
    "writing fd",
    "waiting on an Event",
    "waiting on a Mutex",
    "waiting on a ConditionVariable",
    "waiting on a Semaphore",
    "waiting on a WaitGroup",
    "waiting on a Channel",
    "waiting on a Future",
    "waiting for a run_blocking job",
    "waiting for file I/O",
    "waiting for another loop's answer",
    "waiting its turn on fd",
    "parked",
};
static_assert(std::size(kWaitKindNames) == static_cast<std::size_t>(WaitKind::kOther) + 1,
              "a WaitKind without its name");

std::size_t format_fiber(char* buf, std::size_t cap, FiberId id, std::string_view name) noexcept {
  Writer w(buf, cap);
  w.put("fiber ");
  w.put_number(id);
  if (!name.empty()) {
    w.put(" '");
    w.put(name.substr(0, 64));
    w.put('\'');
  }
  return w.size();
}

std::size_t format_fiber_state(char* buf, std::size_t cap, const FiberRecord& f) noexcept {
  std::size_t n = format_fiber(buf, cap, f.id, f.name);
  Writer w(buf + n, cap - n);
  w.put(" (");
  const auto state = static_cast<std::size_t>(f.state);
  w.put(state < sizeof kFiberStateNames / sizeof *kFiberStateNames ? kFiberStateNames[state]
                                                                   : "corrupt state");
  w.put(')');
  return n + w.size();
}

std::size_t format_duration(char* buf, std::size_t cap, Duration d) noexcept {
  int n;
  const double us = std::chrono::duration<double, std::micro>(d).count();
  if (d <= Duration::zero()) {
    n = std::snprintf(buf, cap, "0 ms");
  } else if (d == Duration::max()) {
    n = std::snprintf(buf, cap, "forever");
  } else if (us < 999.5) {  // (past it, "%.0f" would print "1000 us")
    n = std::snprintf(buf, cap, "%.0f us", us);
  } else if (us < 999.5e3) {  // (past it, "%.3g" would print "1e+03 ms")
    n = std::snprintf(buf, cap, "%.3g ms", us / 1000);
  } else if (us < 120e6) {
    n = std::snprintf(buf, cap, "%.3g s", us / 1e6);
  } else {
    n = std::snprintf(buf, cap, "%.0f min", us / 60e6);
  }
  return n < 0 ? 0 : std::min(static_cast<std::size_t>(n), cap == 0 ? 0 : cap - 1);
}

std::string format_duration(Duration d) {
  char buf[32];
  format_duration(buf, sizeof buf, d);
  return buf;
}

}  // namespace fiberloop::internal
