// Fuzz target: programs of the model test's operation language (see
// tests/model/program.h), decoded from the fuzzer's bytes, must run on
// fiberloop exactly as on the reference model. Run it with -rss_limit_mb=0
// (fuzz/run.sh does): libFuzzer's RSS watcher is a thread fiberloop did not
// start, and while such a thread exists a deadlocked loop waits for a post
// from it (Go's rule) instead of returning.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/model/interpret.h"
#include "tests/model/program.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const fiberloop::model::Program program = fiberloop::model::decode_program(data, size);
  if (program.scripts.empty()) return 0;
  const std::string difference = fiberloop::model::compare_with_reference(program);
  if (!difference.empty()) {
    std::fputs(difference.c_str(), stderr);
    std::abort();
  }
  return 0;
}
