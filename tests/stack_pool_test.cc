// Stacks: pooled reuse, trimming, guard pages, and the mapping budget.
#include <sys/mman.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fiber/internal/stack_pool.h"

namespace fiberloop::internal {
namespace {

long resident_pages(const char* begin, std::size_t bytes) {
  const long page = ::sysconf(_SC_PAGESIZE);
  std::vector<unsigned char> vec(bytes / page);
  if (::mincore(const_cast<char*>(begin), bytes, vec.data()) != 0) return -1;
  long n = 0;
  for (unsigned char v : vec) n += v & 1;
  return n;
}

TEST(StackPoolTest, ReleasedStacksAreReused) {
  StackPool pool;
  Stack a = pool.acquire({});
  char* top = a.top;
  pool.release(a);
  Stack b = pool.acquire({});
  EXPECT_EQ(b.top, top);
  EXPECT_EQ(pool.stats().outstanding, 1u);
  pool.release(b);
  EXPECT_EQ(pool.stats().pooled, 1u);
}

TEST(StackPoolTest, SizesRoundUpToPagesAndShapesDoNotMix) {
  StackPool pool;
  Stack small = pool.acquire({.size = 1000, .guard_page = true});
  Stack unguarded = pool.acquire({.size = 1000, .guard_page = false});
  EXPECT_EQ(small.size, static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)));
  EXPECT_TRUE(small.guarded);
  EXPECT_FALSE(unguarded.guarded);
  pool.release(small);
  Stack again = pool.acquire({.size = 1000, .guard_page = false});
  EXPECT_NE(again.top, small.top);
  pool.release(again);
  pool.release(unguarded);
}

TEST(StackPoolTest, StacksAreCommittedLazily) {
  StackPool pool;
  Stack s = pool.acquire({});
  EXPECT_EQ(resident_pages(s.bottom(), s.size), 0);
  s.top[-1] = 1;
  EXPECT_EQ(resident_pages(s.bottom(), s.size), 1);
  pool.release(s);
}

TEST(StackPoolTest, TrimGivesPagesBackAndKeepsTheRecentOnes) {
  StackPool pool;
  std::vector<Stack> stacks;
  for (int i = 0; i < 40; ++i) {  // all in one slab
    stacks.push_back(pool.acquire({}));
    stacks.back().top[-1] = 1;  // one resident page each
  }
  Stack out = pool.acquire({});  // keeps the slab mapped
  for (Stack& s : stacks) pool.release(s);
  pool.trim(10);
  long resident = 0;
  for (Stack& s : stacks) resident += resident_pages(s.bottom(), s.size);
  EXPECT_EQ(resident, 10);
  EXPECT_EQ(pool.stats().pooled, 40u);
  pool.release(out);
  pool.trim(0);  // nothing out: every slab goes
  EXPECT_EQ(pool.stats().slabs, 0u);
  EXPECT_EQ(pool.stats().pooled, 0u);
  Stack fresh = pool.acquire({});  // and the pool still works
  fresh.top[-1] = 1;
  pool.release(fresh);
}

class GuardTest : public ::testing::TestWithParam<GuardMethod> {};

TEST_P(GuardTest, WritingBelowTheStackFaults) {
  if (GetParam() == GuardMethod::kGuardInstall &&
      StackPool::best_guard_method() != GuardMethod::kGuardInstall) {
    GTEST_FAIL() << "this kernel lacks MADV_GUARD_INSTALL (Linux >= 6.13); the README says so";
  }
  StackPool pool(GetParam());
  Stack s = pool.acquire({});
  ASSERT_TRUE(s.guarded);
  s.bottom()[0] = 1;  // the lowest usable byte is fine
  EXPECT_DEATH(
      {
        volatile char* guard = s.bottom() - 1;
        *guard = 1;
      },
      "");
  pool.release(s);
}

INSTANTIATE_TEST_SUITE_P(Methods, GuardTest,
                         ::testing::Values(GuardMethod::kGuardInstall, GuardMethod::kMprotect));

TEST(StackPoolTest, GuardsSurviveTrim) {
  StackPool pool;
  Stack s = pool.acquire({});
  Stack keep = pool.acquire({});
  pool.release(s);
  pool.trim(0);
  Stack again = pool.acquire({});
  ASSERT_EQ(again.top, s.top);
  EXPECT_DEATH(
      {
        volatile char* guard = again.bottom() - 1;
        *guard = 1;
      },
      "");
  pool.release(again);
  pool.release(keep);
}

TEST(StackPoolTest, OutOfMappingsForGuardsWarnsOnceAndGoesOnUnguarded) {
  long max_maps = 65530;
  std::ifstream("/proc/sys/vm/max_map_count") >> max_maps;
  StackPool pool(GuardMethod::kMprotect);  // two mappings per stack
  ::testing::internal::CaptureStderr();
  std::vector<Stack> stacks;
  stacks.reserve(static_cast<std::size_t>(max_maps) + 100);
  while (pool.stats().unguarded == 0 && static_cast<long>(stacks.size()) < max_maps) {
    stacks.push_back(pool.acquire({.size = 16 * 1024, .guard_page = true}));
  }
  for (int i = 0; i < 100; ++i) stacks.push_back(pool.acquire({.size = 16 * 1024}));
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_GT(pool.stats().unguarded, 0u) << "never ran out of mappings";
  const std::string warning = "out of memory mappings for guard pages";
  EXPECT_NE(err.find(warning), std::string::npos) << err;
  EXPECT_EQ(err.find(warning), err.rfind(warning)) << "warned twice: " << err;
  stacks.back().top[-1] = 1;        // unguarded stacks still work
  std::vector<char> heap(1 << 20);  // and malloc still has mappings to use
  heap.back() = 1;
  for (Stack& s : stacks) pool.release(s);
}

TEST(StackPoolTest, GuardInstallNeedsNoMappingPerStack) {
  if (StackPool::best_guard_method() != GuardMethod::kGuardInstall) {
    GTEST_FAIL() << "this kernel lacks MADV_GUARD_INSTALL";
  }
  StackPool pool;
  std::vector<Stack> stacks;
  for (int i = 0; i < 70'000; ++i) stacks.push_back(pool.acquire({}));  // > max_map_count / 2
  EXPECT_EQ(pool.stats().unguarded, 0u);
  for (Stack& s : stacks) pool.release(s);
}

}  // namespace
}  // namespace fiberloop::internal
