// Writes the seed corpus of //fuzz:scheduler_fuzz: random programs of the
// model test, encoded. bazel run //fuzz:write_scheduler_corpus -- DIR
#include <cstdio>
#include <fstream>
#include <string>

#include "tests/model/program.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  for (std::uint64_t seed = 1; seed <= 64; ++seed) {
    const auto bytes = fiberloop::model::encode_program(fiberloop::model::random_program(seed));
    std::ofstream out(std::string(argv[1]) + "/seed-" + std::to_string(seed), std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  return 0;
}
