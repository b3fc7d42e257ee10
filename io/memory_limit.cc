#include "io/internal/memory_limit.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <limits>
#include <sstream>

namespace fiberloop::internal {
namespace {

constexpr std::uint64_t kNone = std::numeric_limits<std::uint64_t>::max();

// The number a limit file holds; kNone for "max", a missing file or garbage.
std::uint64_t read_limit(const std::string& path) noexcept {
  try {
    std::ifstream in(path);
    std::string text;
    if (!(in >> text)) return kNone;
    std::uint64_t value = 0;
    const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), value);
    return err == std::errc() && end == text.data() + text.size() ? value : kNone;
  } catch (...) {
    return kNone;
  }
}

// The least limit of `dir` and its ancestors up to `top` (each a directory
// of one hierarchy), read from `file`.
std::uint64_t least_up_to(std::string dir, const std::string& top, const char* file) {
  std::uint64_t least = kNone;
  for (;;) {
    least = std::min(least, read_limit(dir + "/" + file));
    if (dir.size() <= top.size()) return least;
    dir.erase(dir.rfind('/'));
  }
}

}  // namespace

std::uint64_t cgroup_memory_limit(std::string_view proc_cgroup, const std::string& root) noexcept {
  std::uint64_t least = kNone;
  try {
    std::istringstream lines{std::string(proc_cgroup)};
    // "hierarchy-id:controllers:path"; v2's has id 0 and no controllers.
    for (std::string line; std::getline(lines, line);) {
      const std::size_t first = line.find(':'), second = line.find(':', first + 1);
      if (first == std::string::npos || second == std::string::npos) continue;
      const std::string controllers = line.substr(first + 1, second - first - 1);
      std::string path = line.substr(second + 1);
      if (!path.empty() && path.back() == '/') path.pop_back();
      if (line.compare(0, first, "0") == 0 && controllers.empty()) {
        least = std::min(least, least_up_to(root + path, root, "memory.max"));
      } else if (("," + controllers + ",").find(",memory,") != std::string::npos) {
        const std::string top = root + "/memory";
        least = std::min(least, least_up_to(top + path, top, "memory.limit_in_bytes"));
      }
    }
  } catch (...) {  // (no memory to read them: no limit known)
  }
  return least;
}

std::uint64_t memory_limit() noexcept {
  std::uint64_t least = kNone;
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) {
    least = static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
  }
  try {
    std::ifstream in("/proc/self/cgroup");
    std::stringstream text;
    text << in.rdbuf();
    least = std::min(least, cgroup_memory_limit(text.str(), "/sys/fs/cgroup"));
  } catch (...) {
  }
  return least;
}

bool BoundedAppend::append(std::string& out, const char* data, std::size_t n) {
  const std::uint64_t need = std::uint64_t{out.size()} + n;
  if (need > out.capacity()) {
    std::uint64_t grown = std::max<std::uint64_t>(need, std::uint64_t{out.capacity()} * 2);
    if (grown > kAskTheLimitFrom) {
      if (limit_ == 0) limit_ = memory_limit();
      if (need > limit_) return false;
      grown = std::min(grown, limit_);
    }
    // Into a fresh string: libstdc++'s reserve() on this one would round a
    // growth of less than twice up to twice, past the limit.
    std::string bigger;
    bigger.reserve(static_cast<std::size_t>(grown));
    bigger.append(out);
    out.swap(bigger);
  }
  out.append(data, n);
  return true;
}

}  // namespace fiberloop::internal
