// Papercuts a new user hit (issue 11, class 5), as they look at run time:
// Future::add_done_callback takes a callable with or without the Future, and
// a move-only value can be moved out of a Future. What must fail to compile
// is checked by tests/compile.
#include <memory>
#include <string>
#include <utility>

#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using testing::LoopTest;
using Api = LoopTest;

TEST_F(Api, AddDoneCallbackTakesACallableWithOrWithoutTheFuture) {
  std::string trace;
  run([&] {
    Promise<int> p;
    Future<int> f = p.get_future();
    f.add_done_callback([&] { trace += "plain "; });
    f.add_done_callback([&](Future<int> done) { trace += std::to_string(done.get()) + " "; });
    p.set_value(4);
    f.add_done_callback([&] { trace += "late"; });  // already ready: runs in the next iteration
    this_fiber::yield();
    this_fiber::yield();
  });
  EXPECT_EQ(trace, "plain 4 late");
}

TEST_F(Api, AMoveOnlyValueCanBeMovedOutOfAFuture) {
  std::unique_ptr<int> taken;
  run([&] {
    Promise<std::unique_ptr<int>> p;
    Future<std::unique_ptr<int>> f = p.get_future();
    auto setter = spawn([&] { p.set_value(std::make_unique<int>(42)); });
    EXPECT_EQ(*f.get(), 42);      // by reference: the Future keeps it
    taken = std::move(f).get();   // moved out
    EXPECT_EQ(f.get(), nullptr);  // what is left behind
    setter.join();
  });
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(*taken, 42);
}

TEST_F(Api, DesignatedInitializersNameOnlyWhatTheyNeed) {
  // tests/compile checks these compile cleanly under -Wextra -Werror.
  const SpawnOptions o{.name = "x"};
  EXPECT_FALSE(o.stack.has_value());
  const StackOptions s{.size = 64 * 1024};
  EXPECT_TRUE(s.guard_page);
  run([&] { spawn(SpawnOptions{.name = "named"}, [] {}).join(); });
}

}  // namespace
}  // namespace fiberloop
