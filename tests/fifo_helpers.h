// Helpers of the FIFO tests (fifo_test, fifo_workers_test).
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "fiberloop.h"
#include "tests/temp_dir.h"

namespace fiberloop::testing {

// A FIFO in a fresh directory under the test's temporary directory.
inline std::string make_fifo() {
  const std::string fifo = testing::temp_dir("fifo") + "/fifo";
  if (::mkfifo(fifo.c_str(), 0600) != 0) throw std::runtime_error("mkfifo failed");
  return fifo;
}

// Keeps the loop's only worker busy until `gate` opens (10 s at most), so
// that the next job waits in the queue. In a fiber; join the Task after.
inline Task<void> occupy_the_worker(std::atomic<bool>& gate) {
  auto busy = spawn([&gate] {
    run_blocking([&gate] {
      for (int i = 0; i < 1000 && !gate; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  });
  this_fiber::yield();  // its job goes first
  return busy;
}

}  // namespace fiberloop::testing
