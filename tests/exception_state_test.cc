// The C++ runtime's exception state (the exceptions being handled, the count
// of uncaught ones) belongs to each fiber and each generator body, not to the
// thread: a context that suspends inside a catch block or inside a destructor
// run by unwinding finds its own state when it resumes, and the others never
// see it. Regression tests for issue 11, class 1: before the fix a rethrow in
// one fiber rethrew another's exception, one fiber's handler freed another's
// exception object, and std::uncaught_exceptions() leaked across fibers.
#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>

#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;
using ExceptionState = LoopTest;

// The what() of `e`, or a marker when it holds no std::exception.
std::string what_of(const std::exception_ptr& e) {
  if (!e) return "(none)";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "(not a std::exception)";
  }
}

// What `throw;` rethrows here, by its what().
std::string rethrown() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  }
}

TEST_F(ExceptionState, ARethrowInAHandlerRethrowsTheFibersOwnException) {
  std::string a_current, a_rethrown, b_current;
  run([&] {
    auto a = spawn([&] {
      try {
        throw std::runtime_error("mine");
      } catch (const std::exception&) {
        this_fiber::sleep_for(10ms);  // b throws, catches and parks meanwhile
        a_current = what_of(std::current_exception());
        a_rethrown = rethrown();
      }
    });
    auto b = spawn([&] {
      try {
        throw std::runtime_error("other");
      } catch (const std::exception&) {
        this_fiber::sleep_for(20ms);
        b_current = what_of(std::current_exception());
      }
    });
    a.join();
    b.join();
  });
  EXPECT_EQ(a_current, "mine");
  EXPECT_EQ(a_rethrown, "mine");
  EXPECT_EQ(b_current, "other");
}

TEST_F(ExceptionState, InterleavedHandlersKeepEachOthersExceptionsAlive) {
  // a's handler ends first; b's exception must outlive it (ASan saw a
  // heap-use-after-free here).
  std::string a_what, b_what;
  run([&] {
    auto a = spawn([&] {
      try {
        throw std::runtime_error(std::string(40, 'a'));  // on the heap, not in the SSO buffer
      } catch (const std::exception& e) {
        this_fiber::yield();
        a_what = e.what();
      }
      this_fiber::yield();
    });
    auto b = spawn([&] {
      try {
        throw std::runtime_error(std::string(40, 'b'));
      } catch (const std::exception& e) {
        this_fiber::yield();
        this_fiber::yield();  // a's handler has ended by now
        b_what = e.what();
        EXPECT_EQ(what_of(std::current_exception()), std::string(40, 'b'));
      }
    });
    a.join();
    b.join();
  });
  EXPECT_EQ(a_what, std::string(40, 'a'));
  EXPECT_EQ(b_what, std::string(40, 'b'));
}

// Parks in its destructor while an exception unwinds through it.
struct ParksWhileUnwinding {
  Event& resume;
  ~ParksWhileUnwinding() { resume.wait(); }
};

TEST_F(ExceptionState, UncaughtExceptionsCountsOnlyTheFibersOwn) {
  int seen_elsewhere = -1;
  int seen_inside = -1;
  run([&] {
    Event resume;
    auto unwinding = spawn([&] {
      try {
        ParksWhileUnwinding guard{resume};
        throw std::runtime_error("unwinding");
      } catch (const std::exception&) {
      }
      seen_inside = std::uncaught_exceptions();
    });
    this_fiber::yield();  // `unwinding` is parked in ~ParksWhileUnwinding
    seen_elsewhere = std::uncaught_exceptions();
    resume.set();
    unwinding.join();
  });
  EXPECT_EQ(seen_elsewhere, 0);
  EXPECT_EQ(seen_inside, 0);
}

TEST_F(ExceptionState, ATaskGroupIsNotCancelledByAnotherFibersUnwinding) {
  // ~TaskGroup cancels its children only when an exception leaves its own
  // scope; another fiber parked mid-unwinding made it think one did.
  bool child_finished = false;
  run([&] {
    Event resume;
    Task<void> unwinding;
    {
      TaskGroup group;
      group.spawn([&] {
        this_fiber::sleep_for(1ms);
        child_finished = true;
      });
      unwinding = spawn([&] {
        try {
          ParksWhileUnwinding guard{resume};
          throw std::runtime_error("unwinding");
        } catch (const std::exception&) {
        }
      });
      this_fiber::yield();  // `unwinding` is parked in ~ParksWhileUnwinding
    }                       // ~TaskGroup joins; nothing is leaving this scope by an exception
    resume.set();
    unwinding.join();
  });
  EXPECT_TRUE(child_finished);
}

TEST_F(ExceptionState, ATimedOutJoinOfACancelledGroupRethrowsTheTimeoutNotAChildsCancellation) {
  // The children catch Cancelled and clean up inside their handlers; the
  // owner's join times out and enters its own handler on top of theirs. When
  // a child's handler ended, it ended the owner's instead, and the owner's
  // rethrow threw the child's Cancelled.
  std::string outcome;
  run([&] {
    TaskGroup group;
    for (int i = 0; i < 3; ++i) {
      group.spawn([] {
        try {
          this_fiber::sleep_for(1h);
        } catch (const Cancelled&) {
          for (int k = 0; k < 4; ++k) {
            try {
              this_fiber::sleep_for(5ms);  // cleanup; a second cancel may cut it short
            } catch (const Cancelled&) {
            }
          }
          throw;
        }
      });
    }
    this_fiber::yield();  // the children are parked in their sleeps
    group.cancel();
    try {
      with_timeout(2ms, [&] { group.join(); });
      outcome = "returned";
    } catch (const TimeoutError&) {
      outcome = "TimeoutError";
    } catch (const Cancelled&) {
      outcome = "Cancelled";
    }
  });
  EXPECT_EQ(outcome, "TimeoutError");
}

TEST_F(ExceptionState, AFiberSpawnedInAHandlerStartsWithNoExceptionBeingHandled) {
  std::string child_current = "unset";
  int child_uncaught = -1;
  run([&] {
    Task<void> child;
    try {
      throw std::runtime_error("spawner's");
    } catch (const std::exception&) {
      child = spawn([&] {
        child_current = what_of(std::current_exception());
        child_uncaught = std::uncaught_exceptions();
      });
      this_fiber::yield();  // the child runs while the spawner is in its handler
    }
    child.join();
  });
  EXPECT_EQ(child_current, "(none)");
  EXPECT_EQ(child_uncaught, 0);
}

TEST(ExceptionStateGenerator, TheBodyAndItsConsumerEachKeepTheirOwn) {
  std::string body_rethrown, consumer_rethrown, body_current_at_start;
  Generator<int> g([&](Generator<int>::Context& co) {
    body_current_at_start = what_of(std::current_exception());
    try {
      throw std::runtime_error("body's");
    } catch (const std::exception&) {
      co.yield(1);  // the consumer handles its own exception meanwhile
      body_rethrown = rethrown();
    }
    co.yield(2);
  });
  try {
    throw std::runtime_error("consumer's");
  } catch (const std::exception&) {
    EXPECT_EQ(*g.next(), 1);
    EXPECT_EQ(*g.next(), 2);
    consumer_rethrown = rethrown();
  }
  EXPECT_EQ(body_current_at_start, "(none)");
  EXPECT_EQ(body_rethrown, "body's");
  EXPECT_EQ(consumer_rethrown, "consumer's");
  EXPECT_EQ(std::uncaught_exceptions(), 0);
}

TEST(ExceptionStateGenerator, UncaughtExceptionsInsideAGeneratorBodyAreItsOwn) {
  // The body yields from a destructor that unwinding runs; the consumer,
  // meanwhile, is not unwinding anything.
  int consumer_sees = -1;
  int body_sees = -1;
  Generator<int> g([&](Generator<int>::Context& co) {
    struct YieldsWhileUnwinding {
      Generator<int>::Context& co;
      int& seen;
      ~YieldsWhileUnwinding() {
        seen = std::uncaught_exceptions();
        co.yield(7);
      }
    };
    try {
      YieldsWhileUnwinding y{co, body_sees};
      throw std::runtime_error("x");
    } catch (const std::exception&) {
    }
  });
  EXPECT_EQ(*g.next(), 7);
  consumer_sees = std::uncaught_exceptions();
  EXPECT_FALSE(g.next().has_value());
  EXPECT_EQ(body_sees, 1);
  EXPECT_EQ(consumer_sees, 0);
}

}  // namespace
}  // namespace fiberloop
