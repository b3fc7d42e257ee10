// The stall detector (LoopOptions::stall_threshold): a watchdog thread that
// samples the loop's heartbeat (switches, iterations, callbacks run). When
// the loop is inside run() and not blocked in epoll, and the heartbeat has
// not moved for the threshold, something has run that long without
// yielding: the watchdog signals the loop thread (SIGURG), whose handler
// prints, while the stall is still going on, what is running (fiber name
// and spawn site, or a callback) and the loop thread's backtrace. When the
// loop moves again the watchdog prints how long the stall lasted.
#pragma once

#include <pthread.h>

#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>

#include "loop/options.h"

namespace fiberloop::internal {

class Diagnostics;

class StallWatchdog {
 public:
  // Starts the watchdog for the loop of `diagnostics`, which runs on the
  // calling thread.
  // Throws: std::system_error if the thread cannot start.
  StallWatchdog(Diagnostics& diagnostics, Duration threshold);
  // Stops and joins the watchdog.
  ~StallWatchdog();
  StallWatchdog(const StallWatchdog&) = delete;
  StallWatchdog& operator=(const StallWatchdog&) = delete;

  // The signal the watchdog sends the stalled loop thread. SIGURG: ignored
  // by default, so a stray one is harmless.
  static constexpr int kSignal = SIGURG;

 private:
  void watch();

  Diagnostics& diagnostics_;
  const Duration threshold_;
  const pthread_t loop_thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fiberloop::internal
