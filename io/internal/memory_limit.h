// The memory this process may have: the machine's, or less under a control
// group's limit (a container's). read_file() refuses a file larger than
// that before allocating for it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace fiberloop::internal {

// The least of the machine's memory (sysconf) and the limits of this
// process's control groups and their ancestors: cgroup v2's memory.max, v1's
// memory.limit_in_bytes. In bytes; UINT64_MAX if nothing says.
std::uint64_t memory_limit() noexcept;

// The control-group part of memory_limit(), for `proc_cgroup` (the text of
// /proc/self/cgroup) under the hierarchy mounted at `root`
// (/sys/fs/cgroup). UINT64_MAX if no limit is found.
std::uint64_t cgroup_memory_limit(std::string_view proc_cgroup, const std::string& root) noexcept;

}  // namespace fiberloop::internal
