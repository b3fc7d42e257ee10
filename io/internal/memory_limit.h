// The memory this process may have: the machine's, or less under a control
// group's limit (a container's). read_file() refuses a file larger than
// that before allocating for it, and stops a source of unknown size (a
// FIFO, a device) that gives more.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fiberloop::internal {

// The least of the machine's memory (sysconf) and the limits of this
// process's control groups and their ancestors: cgroup v2's memory.max, v1's
// memory.limit_in_bytes. In bytes; UINT64_MAX if nothing says.
std::uint64_t memory_limit() noexcept;

// The size from which reads ask memory_limit() (a few files of this size:
// nothing beside reading that much).
constexpr std::uint64_t kAskTheLimitFrom = std::uint64_t{16} << 20;

// Appends to a string read from a source of unknown size, growing its
// capacity (twice what it held, as std::string does) no further than the
// memory this process may have, which is asked once the string passes
// 16 MiB: neither its size nor its capacity ever passes that limit.
class BoundedAppend {
 public:
  // `limit` in bytes; 0 asks memory_limit() when first needed.
  explicit BoundedAppend(std::uint64_t limit = 0) noexcept : limit_(limit) {}

  // Appends `n` bytes from `data` to `out`. Returns: false, leaving `out`
  // as it was, if its size would pass the limit. Throws: std::bad_alloc,
  // std::length_error, as std::string does.
  bool append(std::string& out, const char* data, std::size_t n);

  // The limit in bytes, once asked (else 0).
  std::uint64_t limit() const noexcept { return limit_; }

 private:
  std::uint64_t limit_;
};

// The control-group part of memory_limit(), for `proc_cgroup` (the text of
// /proc/self/cgroup) under the hierarchy mounted at `root`
// (/sys/fs/cgroup). UINT64_MAX if no limit is found.
std::uint64_t cgroup_memory_limit(std::string_view proc_cgroup, const std::string& root) noexcept;

}  // namespace fiberloop::internal
