// Keeps the README's tutorial honest: every step's source appears in
// README.md verbatim, and the output the README shows after it (the next
// ```text block) is what the program prints.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string run_program(const std::string& path) {
  std::string out;
  FILE* p = ::popen(path.c_str(), "r");
  if (p == nullptr) return "(could not run " + path + ")";
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  ::pclose(p);
  return out;
}

class Tutorial : public ::testing::TestWithParam<const char*> {};

TEST_P(Tutorial, TheReadmeQuotesTheProgramAndWhatItPrints) {
  const std::string step = GetParam();
  const std::string readme = read_file("README.md");
  ASSERT_FALSE(readme.empty());
  const std::string source = read_file("examples/tutorial/" + step + ".cc");
  ASSERT_FALSE(source.empty()) << step;
  const std::size_t at = readme.find("```cpp\n" + source + "```\n");
  ASSERT_NE(at, std::string::npos)
      << "README.md does not quote examples/tutorial/" << step << ".cc verbatim";
  const std::string fence = "```text\n";
  const std::size_t out_at = readme.find(fence, at + source.size());
  ASSERT_NE(out_at, std::string::npos) << "no ```text block after " << step;
  const std::size_t begin = out_at + fence.size();
  const std::string shown = readme.substr(begin, readme.find("```", begin) - begin);
  EXPECT_EQ(run_program("examples/tutorial/" + step), shown) << step;
}

INSTANTIATE_TEST_SUITE_P(Steps, Tutorial,
                         ::testing::Values("1_generator", "2_coroutine", "3_task", "4_event_loop",
                                           "5_sockets", "6_sleep"));

}  // namespace
