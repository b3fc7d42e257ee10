// Nursery: TaskGroup's failure and cancellation semantics for children that
// are forgotten as they finish; memory stays flat however many come and go.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fiberloop.h"
#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using NurseryTest = testing::LoopTest;

TEST_F(NurseryTest, JoinWaitsForEveryChild) {
  int done = 0;
  run([&] {
    Nursery n;
    for (int i = 0; i < 10; ++i) {
      n.spawn([&done, i] {
        this_fiber::sleep_for(std::chrono::milliseconds(i));
        ++done;
      });
    }
    EXPECT_EQ(n.running(), 10u);
    n.join();
    EXPECT_EQ(n.running(), 0u);
  });
  EXPECT_EQ(done, 10);
}

TEST_F(NurseryTest, TheFirstFailureCancelsTheRestAndJoinRethrowsIt) {
  std::vector<std::string> reported;
  loop().set_exception_handler(testing::collect_whats(reported));
  int cancelled = 0;
  run([&] {
    Nursery n;
    for (int i = 0; i < 3; ++i) {
      n.spawn([&cancelled] {
        try {
          this_fiber::sleep_for(10s);
        } catch (const Cancelled&) {
          ++cancelled;
          throw;
        }
      });
    }
    n.spawn([] {
      this_fiber::sleep_for(1ms);
      throw std::runtime_error("first");
    });
    n.spawn([] {
      try {
        this_fiber::sleep_for(10s);
      } catch (const Cancelled&) {
        throw std::runtime_error("second, while cancelled");  // reported, not lost
      }
    });
    try {
      n.join();
      ADD_FAILURE() << "join did not rethrow";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "first");
    }
  });
  EXPECT_EQ(cancelled, 3);
  EXPECT_EQ(reported, std::vector<std::string>{"second, while cancelled"});
}

TEST_F(NurseryTest, ACancelledChildHasNotFailed) {
  std::vector<std::string> reported;
  loop().set_exception_handler(testing::collect_whats(reported));
  run([&] {
    Nursery n;
    n.spawn([] { this_fiber::sleep_for(10s); });
    n.spawn([] {});  // finishes at once
    this_fiber::yield();
    n.cancel();
    n.join();  // no exception
  });
  EXPECT_TRUE(reported.empty());
}

TEST_F(NurseryTest, CancellingTheOwnerCancelsTheChildrenFirst) {
  bool child_saw_cancel = false;
  run([&] {
    auto owner = spawn([&] {
      Nursery n;
      n.spawn([&] {
        try {
          this_fiber::sleep_for(10s);
        } catch (const Cancelled&) {
          child_saw_cancel = true;
          throw;
        }
      });
      n.join();
    });
    this_fiber::sleep_for(5ms);
    owner.cancel();
    EXPECT_THROW(owner.join(), Cancelled);
  });
  EXPECT_TRUE(child_saw_cancel);
}

TEST_F(NurseryTest, AnExceptionLeavingTheScopeCancelsTheChildren) {
  int cancelled = 0;
  run([&] {
    try {
      Nursery n;
      n.spawn([&] {
        try {
          this_fiber::sleep_for(10s);
        } catch (const Cancelled&) {
          ++cancelled;
          throw;
        }
      });
      this_fiber::yield();
      throw std::logic_error("owner fails");
    } catch (const std::logic_error&) {
    }
  });
  EXPECT_EQ(cancelled, 1);
}

TEST_F(NurseryTest, AFailureNobodyJoinsIsReported) {
  std::vector<std::string> reported;
  loop().set_exception_handler(testing::collect_whats(reported));
  run([&] {
    Nursery n;
    n.spawn([] { throw std::runtime_error("lost?"); });
  });  // ~Nursery waits, then reports
  EXPECT_EQ(reported, std::vector<std::string>{"lost?"});
}

TEST_F(NurseryTest, SpawnAfterJoinAndFromAnotherThreadAreErrors) {
  run([] {
    Nursery n;
    n.join();
    EXPECT_THROW(n.spawn([] {}), std::logic_error);
  });
  run([] {
    Nursery n;
    n.spawn([] { this_fiber::sleep_for(5ms); });
    std::string what;
    std::thread([&] {
      fiberloop::run([&] {
        try {
          n.join();  // another loop's: its state is unlocked
        } catch (const std::logic_error& e) {
          what = e.what();
        }
      });
    }).join();
    EXPECT_NE(what.find("Nursery::join: this Loop belongs to another thread"), std::string::npos)
        << what;
  });
  run([] {  // a TaskGroup's join read its children from the other thread (TSan saw it)
    TaskGroup g;
    std::atomic<bool> stop{false};
    std::thread other([&] {
      fiberloop::run([&] {
        while (!stop) {
          EXPECT_THROW(g.join(), std::logic_error);
          this_fiber::sleep_for(100us);
        }
      });
    });
    for (int i = 0; i < 200; ++i) {
      g.spawn([] {});
      this_fiber::sleep_for(50us);
    }
    stop = true;
    other.join();
    g.join();
  });
  EXPECT_THROW(Nursery(), std::logic_error);  // outside a fiber
}

// Resident memory of the process, in bytes.
std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

// A server's shape: a million short children through one nursery, a few
// hundred at once. What a child leaves behind is reused by the next, so
// memory does not grow with the count (a TaskGroup, which keeps every
// child's Task and so its fiber record, grows by hundreds of MiB here).
TEST_F(NurseryTest, AMillionShortChildrenKeepMemoryFlat) {
  // Sanitizers pay for each new fiber: fewer children there (at_scale).
  constexpr int kChildren = testing::at_scale(1'000'000);
  constexpr int kWarm = kChildren / 4 < 10'000 ? kChildren / 4 : 10'000;
  long sum = 0;
  std::size_t grew = 0;
  run([&] {
    Nursery n;
    auto wave = [&](int count) {
      for (int i = 0; i < count; ++i) {
        n.spawn([&sum, i] { sum += i % 7; });
        if (n.running() >= 256) this_fiber::yield();  // they run and are forgotten
      }
      while (n.running() > 0) this_fiber::yield();
    };
    wave(kWarm);  // warm: pools and nodes at their steady size
    const std::size_t before = resident_bytes();
    wave(kChildren);
    grew = resident_bytes() - std::min(before, resident_bytes());
    n.join();
  });
  EXPECT_LT(grew, std::size_t{16} << 20) << "resident memory grew by " << grew << " bytes";
  long expected = 0;
  for (int i = 0; i < kWarm; ++i) expected += i % 7;
  for (int i = 0; i < kChildren; ++i) expected += i % 7;
  EXPECT_EQ(sum, expected);
}

// Trio's rule: a child may start siblings while the owner waits in join().
TEST_F(NurseryTest, AChildMaySpawnSiblingsWhileTheOwnerJoins) {
  int ran = 0;
  run([&] {
    Nursery n;
    n.spawn([&] {
      this_fiber::sleep_for(2ms);  // the owner is in join() by now
      for (int i = 0; i < 3; ++i) {
        n.spawn([&ran] {
          this_fiber::sleep_for(1ms);
          ++ran;
        });
      }
    });
    n.join();  // waits for the grandchildren too
    EXPECT_EQ(ran, 3);
    EXPECT_THROW(n.spawn([] {}), std::logic_error);  // joined
  });
}

// asyncio's rule: a failure while the owner is still in its body (a server
// in accept()) cancels the owner too, and the report names the child.
TEST_F(NurseryTest, AFailureCancelsAnOwnerThatIsNotJoiningYet) {
  std::vector<std::string> reported;
  loop().set_exception_handler(testing::collect_whats(reported, /*with_name=*/true));
  run([&] {
    auto server = spawn([&] {
      Nursery n;
      n.spawn(
          [] {
            this_fiber::sleep_for(1ms);
            throw std::runtime_error("connection handler failed");
          },
          std::source_location::current());
      this_fiber::sleep_for(10s);  // the owner's body: accept() in a server
      ADD_FAILURE() << "the owner went on";
    });
    EXPECT_THROW(server.join(), Cancelled);
  });
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_NE(reported[0].find("connection handler failed"), std::string::npos) << reported[0];
  // The object form lets the Cancelled leave; the report says so.
  EXPECT_NE(reported[0].find("which cancelled the owner (with_task_group() and with_nursery()"),
            std::string::npos)
      << reported[0];
}

// A failure cancels an owner not yet in join(). If that cancel is still
// pending when the owner reaches join(), join() rethrows the failure, not
// Cancelled (the failure was lost before); if join() did not need to wait,
// the cancel is taken back: the owner's next wait is not cancelled.
TEST_F(NurseryTest, JoinRethrowsTheFailureNotTheCancelItSentTheOwner) {
  std::vector<std::string> reported;
  loop().set_exception_handler(testing::collect_whats(reported));
  run([&] {
    {
      Event go;
      Nursery n;
      n.spawn([] { this_fiber::sleep_for(1h); });
      n.spawn([&] { go.set(); });  // the owner is woken in the iteration of the failure
      n.spawn([] { throw std::runtime_error("boom"); });
      go.wait();
      EXPECT_THROW(n.join(), std::runtime_error);
    }
    {
      Event go;
      Nursery n;
      n.spawn([&] { go.set(); });
      n.spawn([] { throw std::runtime_error("boom again"); });
      go.wait();
      EXPECT_THROW(n.join(), std::runtime_error);  // nothing left to wait for
      EXPECT_NO_THROW(this_fiber::sleep_for(1ms));
    }
  });
  EXPECT_TRUE(reported.empty());
}

// ~Nursery and ~TaskGroup wait for the children; the owner's timeout or
// cancel while they wait cancels the children (before, the wait ran them
// to their end), and is delivered to the owner again at its next wait.
TEST_F(NurseryTest, ATimeoutOrCancelOfTheOwnerInTheDestructorCancelsTheChildren) {
  run([] {
    bool child_cancelled = false;
    // The destructor cannot throw: fn returns, so with_timeout does too.
    with_timeout(5ms, [&] {
      TaskGroup g;
      g.spawn([&] {
        try {
          this_fiber::sleep_for(2s);
        } catch (const Cancelled&) {
          child_cancelled = true;
          throw;
        }
      });
    });
    EXPECT_TRUE(child_cancelled);

    child_cancelled = false;
    bool cancelled_again = false;
    auto owner = spawn([&] {
      {
        Nursery n;
        n.spawn([&] {
          try {
            this_fiber::sleep_for(2s);
          } catch (const Cancelled&) {
            child_cancelled = true;
          }
        });
      }
      try {
        this_fiber::yield();
      } catch (const Cancelled&) {
        cancelled_again = true;
      }
    });
    this_fiber::sleep_for(2ms);
    owner.cancel();
    owner.join();
    EXPECT_TRUE(child_cancelled);
    EXPECT_TRUE(cancelled_again);
  });
}

// A group on the heap destroyed by a fiber that is not its owner: a cancel
// of that fiber while the destructor waits is delivered to it again at its
// next wait (it went to the owner's record before, and was lost).
TEST_F(NurseryTest, ACancelDuringAnotherFibersDestructorWaitReachesThatFiber) {
  run([] {
    Nursery* n = nullptr;
    bool child_cancelled = false;
    auto owner = spawn([&] {
      n = new Nursery;
      n->spawn([&] {
        try {
          this_fiber::sleep_for(2s);
        } catch (const Cancelled&) {
          child_cancelled = true;
        }
      });
    });
    owner.join();
    bool cancelled_again = false;
    auto destroyer = spawn([&] {
      delete n;  // waits for the child
      try {
        this_fiber::yield();
      } catch (const Cancelled&) {
        cancelled_again = true;
      }
    });
    this_fiber::sleep_for(2ms);
    destroyer.cancel();
    destroyer.join();
    EXPECT_TRUE(child_cancelled);
    EXPECT_TRUE(cancelled_again);
  });
}

// The owner caught the Cancelled a failure sent it; a later cancel from
// elsewhere, while it joins, ends join() with Cancelled (it was taken for
// the failure's and turned into the failure: a supervisor's cancel was
// lost), and the failure goes to the exception handler.
TEST_F(NurseryTest, AnOutsideCancelInJoinAfterTheFailuresWasCaughtStaysACancel) {
  std::vector<std::string> reported;
  loop().set_exception_handler(testing::collect_whats(reported));
  run([] {
    Event joining;
    auto owner = spawn([&joining] {
      Nursery n;
      n.spawn([] {
        this_fiber::sleep_for(1ms);
        throw std::runtime_error("boom");
      });
      n.spawn([] {
        try {
          this_fiber::sleep_for(1h);
        } catch (const Cancelled&) {
          this_fiber::sleep_for(50ms);  // cleaning up: Cancelled comes once
        }
      });
      try {
        this_fiber::sleep_for(1h);
      } catch (const Cancelled&) {  // the failure's cancel, caught
      }
      joining.set();  // (no switch: the join below parks first)
      n.join();       // waits for the second child's cleanup
    });
    // Only once the failure's cancel has been caught and the owner joins (a
    // cancel sent after a fixed sleep came first on a slow machine, and was
    // taken for the failure's).
    joining.wait();
    owner.cancel();
    EXPECT_THROW(owner.join(), Cancelled);
  });
  EXPECT_EQ(reported, std::vector<std::string>{"boom"});
}

}  // namespace
}  // namespace fiberloop
