// A latency histogram for the load generators: nanoseconds in log-linear
// buckets (32 per power of two, about 3% wide), percentiles in microseconds.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

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

}  // namespace fiberloop::bench
