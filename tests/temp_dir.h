// A fresh directory for a test's files, under the test's own temporary
// directory (Bazel's TEST_TMPDIR; /tmp elsewhere, as under ctest), removed
// with everything in it when the test program exits.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace fiberloop::testing {

// The directories temp_dir made, removed at exit by the process that made
// them (a death test's child exits too, and must not take its parent's).
class TempDirs {
 public:
  static TempDirs& instance() {
    static TempDirs dirs;
    return dirs;
  }
  void add(std::string dir) {
    std::lock_guard<std::mutex> hold(mutex_);
    dirs_.push_back(std::move(dir));
  }
  ~TempDirs() {
    if (::getpid() != owner_) return;
    for (const std::string& dir : dirs_) {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  }

 private:
  TempDirs() = default;
  const pid_t owner_ = ::getpid();
  std::mutex mutex_;
  std::vector<std::string> dirs_;
};

// A new directory named "fiberloop_<name>_XXXXXX", removed at exit.
// Throws: std::runtime_error.
inline std::string temp_dir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(base != nullptr ? base : "/tmp") + "/fiberloop_" + name + "_XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) throw std::runtime_error("mkdtemp " + dir + " failed");
  TempDirs::instance().add(dir);
  return dir;
}

}  // namespace fiberloop::testing
