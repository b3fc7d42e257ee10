// TimerClock's questions for the kernel: may the cycle counter bound time
// here (only where the kernel trusts it as its own clock)? And how long has
// the machine slept (calibration must not span a suspension)?
#include "loop/internal/timer_clock.h"

#include <time.h>

#include <cstdio>
#include <cstring>

namespace fiberloop::internal {

bool TimerClock::counter_usable() noexcept {
#if defined(__x86_64__)
  static const bool usable = [] {
    std::FILE* in =
        std::fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");
    if (in == nullptr) return false;  // no sysfs (a sandbox): every look is exact
    char name[32] = {};
    const bool read = std::fscanf(in, "%31s", name) == 1;
    std::fclose(in);
    return read && std::strcmp(name, "tsc") == 0;
  }();
  return usable;
#else
  return false;
#endif
}

Duration TimerClock::asleep_at(TimePoint t) noexcept {
  timespec boot{};
  ::clock_gettime(CLOCK_BOOTTIME, &boot);
  return Duration(std::int64_t{boot.tv_sec} * 1'000'000'000 + boot.tv_nsec) - t.time_since_epoch();
}

}  // namespace fiberloop::internal
