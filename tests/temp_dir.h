// A fresh directory for a test's files, under the test's own temporary
// directory (Bazel's TEST_TMPDIR; /tmp elsewhere).
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace fiberloop::testing {

// A new directory named "fiberloop_<name>_XXXXXX". Throws: std::runtime_error.
inline std::string temp_dir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = std::string(base != nullptr ? base : "/tmp") + "/fiberloop_" + name + "_XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) throw std::runtime_error("mkdtemp " + dir + " failed");
  return dir;
}

}  // namespace fiberloop::testing
