// What the plain and the TLS load generator share: a closed-loop run's
// clock, its count of requests and errors, a latency histogram (log-linear
// buckets, 32 per power of two, about 3% wide), the result they make, and a
// client socket to 127.0.0.1.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "bench/loadgen.h"

namespace fiberloop::bench {

class Histogram {
 public:
  void add(std::uint64_t ns) {
    ++counts_[index(ns)];
    ++total_;
  }
  double percentile_us(double p) const {
    if (total_ == 0) return 0;
    const auto want = static_cast<std::uint64_t>(p * static_cast<double>(total_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= want) return static_cast<double>(value(i)) / 1000.0;
    }
    return 0;
  }

 private:
  static std::size_t index(std::uint64_t v) {
    if (v < 64) return v;
    const int shift = 63 - __builtin_clzll(v) - 5;
    return static_cast<std::size_t>(shift) * 32 + (v >> shift);
  }
  static std::uint64_t value(std::size_t i) {
    if (i < 64) return i;
    const std::size_t shift = i / 32 - 1;
    return (static_cast<std::uint64_t>(i - shift * 32) << shift) + (1ull << shift) / 2;
  }
  std::array<std::uint64_t, 2048> counts_{};
  std::uint64_t total_ = 0;
};

// One run: started when made, over once `seconds` have passed.
class LoadRun {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LoadRun(double seconds)
      : begin_(Clock::now()),
        end_(begin_ +
             std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds))) {}

  bool running() const { return Clock::now() < end_; }
  // A request sent at `sent_at` has had its whole response.
  void completed(Clock::time_point sent_at) {
    latency_.add(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - sent_at).count()));
    ++result_.requests;
  }
  // A connection failed (it is made again).
  void failed() { ++result_.errors; }
  // The figures, as of now.
  LoadResult finish() {
    result_.seconds = std::chrono::duration<double>(Clock::now() - begin_).count();
    result_.requests_per_second = static_cast<double>(result_.requests) / result_.seconds;
    result_.p50_us = latency_.percentile_us(0.50);
    result_.p99_us = latency_.percentile_us(0.99);
    return result_;
  }

 private:
  Clock::time_point begin_, end_;
  Histogram latency_;
  LoadResult result_;
};

// A non-blocking TCP socket (TCP_NODELAY) connecting to 127.0.0.1:`port`;
// `in_progress` says whether the connect is still under way (bench/loadgen.cc).
int connect_loopback(std::uint16_t port, bool* in_progress);

}  // namespace fiberloop::bench
