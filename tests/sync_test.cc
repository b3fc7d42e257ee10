// Event, Mutex, ConditionVariable, Semaphore, WaitGroup, including the races
// between a wake-up and a cancellation.
#include <chrono>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "tests/loop_fixture.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;
using Sync = LoopTest;

TEST_F(Sync, EventSetWakesEveryWaiter) {
  Event e;
  int woken = 0;
  for (int i = 0; i < 5; ++i)
    loop().spawn([&] {
      e.wait();
      ++woken;
    });
  loop().spawn([&] {
    this_fiber::yield();
    EXPECT_EQ(woken, 0);
    e.set();
  });
  loop().run();
  EXPECT_EQ(woken, 5);
  EXPECT_TRUE(e.is_set());
  run([&] { e.wait(); });  // set: returns at once
  e.clear();
  EXPECT_FALSE(e.is_set());
}

TEST_F(Sync, EventWaitForTimesOutAndReturnsFalse) {
  run([] {
    Event e;
    const TimePoint start = Clock::now();
    EXPECT_FALSE(e.wait_for(20ms));
    EXPECT_GE(Clock::now() - start, 20ms);
  });
  run([] {
    Event e;
    spawn([&] {
      this_fiber::sleep_for(5ms);
      e.set();
    });
    EXPECT_TRUE(e.wait_for(5s));
  });
  EXPECT_EQ(loop().stats().timers_pending, 0u);
}

TEST_F(Sync, MutexCriticalSectionHeldAcrossAYield) {
  Mutex m;
  int inside = 0, max_inside = 0, count = 0;
  for (int i = 0; i < 10; ++i) {
    loop().spawn([&] {
      for (int k = 0; k < 20; ++k) {
        std::lock_guard lock(m);
        ++inside;
        max_inside = std::max(max_inside, inside);
        const int seen = count;
        this_fiber::yield();  // others run; none may enter
        count = seen + 1;
        --inside;
      }
    });
  }
  loop().run();
  EXPECT_EQ(max_inside, 1);
  EXPECT_EQ(count, 200);
}

TEST_F(Sync, MutexHandsOffInFifoOrder) {
  Mutex m;
  std::string order;
  run([&] {
    m.lock();
    std::vector<Task<void>> waiters;
    for (char c : std::string("abcd"))
      waiters.push_back(spawn([&, c] {
        std::lock_guard lock(m);
        order += c;
      }));
    this_fiber::yield();  // all four queue up
    EXPECT_FALSE(m.try_lock());
    m.unlock();
    for (auto& w : waiters) w.join();
  });
  EXPECT_EQ(order, "abcd");
}

TEST_F(Sync, MutexMisuse) {
  run([] {
    Mutex m;
    EXPECT_THROW(m.unlock(), std::logic_error);
    m.lock();
    EXPECT_THROW(m.lock(), std::logic_error);  // not recursive
    auto other = spawn([&] { m.unlock(); });
    EXPECT_THROW(other.join(), std::logic_error);
    m.unlock();
  });
}

// Whether `{std::adopt_lock, m}` copy-list-initializes a Guard: not for the
// standard's scoped_lock, whose adopting constructor is explicit.
template <class Guard>
concept AdoptsByCopyListInit = requires(Mutex& m, void (*take)(Guard)) {
  take({std::adopt_lock, m});
};

// std::lock_guard<Mutex> and std::scoped_lock<Mutex> are fiberloop's own
// specializations (sync/mutex.h): the standard's interface, adopt_lock
// included.
TEST_F(Sync, LockGuardsHaveTheStandardInterface) {
  static_assert(std::is_same_v<std::lock_guard<Mutex>::mutex_type, Mutex>);
  static_assert(std::is_same_v<std::scoped_lock<Mutex>::mutex_type, Mutex>);
  static_assert(!std::is_copy_constructible_v<std::lock_guard<Mutex>>);
  static_assert(!std::is_copy_constructible_v<std::scoped_lock<Mutex>>);
  // explicit where the standard's are: no copy-list-initialization.
  static_assert(!std::is_convertible_v<Mutex&, std::lock_guard<Mutex>>);
  static_assert(!std::is_convertible_v<Mutex&, std::scoped_lock<Mutex>>);
  static_assert(!AdoptsByCopyListInit<std::scoped_lock<Mutex>>);
  run([] {
    Mutex m;
    m.lock();
    { std::lock_guard<Mutex> adopted(m, std::adopt_lock); }
    EXPECT_TRUE(m.try_lock());  // the guard released it
    m.unlock();
    {
      std::lock_guard deduced(m);
      EXPECT_FALSE(m.try_lock());
    }
    EXPECT_TRUE(m.try_lock());
    m.unlock();
    m.lock();
    { std::scoped_lock adopted(std::adopt_lock, m); }
    {
      std::scoped_lock deduced(m);
      EXPECT_FALSE(m.try_lock());
    }
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
}

TEST_F(Sync, CancelledMutexWaiterPassesTheLockOn) {
  // The waiter is cancelled before the unlock reaches it: the lock goes to
  // the next waiter, and nothing is left locked.
  Mutex m;
  std::string trace;
  run([&] {
    m.lock();
    auto a = spawn([&] {
      std::lock_guard lock(m);
      trace += "a";
    });
    auto b = spawn([&] {
      std::lock_guard lock(m);
      trace += "b";
    });
    this_fiber::yield();
    a.cancel();
    m.unlock();
    EXPECT_THROW(a.join(), Cancelled);
    b.join();
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
  EXPECT_EQ(trace, "b");
}

TEST_F(Sync, MutexHandedToAWaiterThenCancelledIsReleasedByItsUnwinding) {
  // The unlock reaches the waiter first; the cancel arrives before it runs.
  // It owns the mutex, returns from lock(), and is cancelled at its next
  // suspension point, where its lock_guard gives the mutex back.
  Mutex m;
  std::string trace;
  run([&] {
    m.lock();
    auto a = spawn([&] {
      std::lock_guard lock(m);
      trace += "a-owns ";
      this_fiber::yield();  // the pending cancel lands here
      trace += "unreachable ";
    });
    this_fiber::yield();
    m.unlock();  // a now owns it
    a.cancel();
    EXPECT_THROW(a.join(), Cancelled);
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
  EXPECT_EQ(trace, "a-owns ");
}

TEST_F(Sync, ConditionVariableWithPredicate) {
  Mutex m;
  ConditionVariable cv;
  std::vector<int> queue;
  std::vector<int> got;
  loop().spawn([&] {
    for (int i = 0; i < 3; ++i) {
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return !queue.empty(); });
      got.push_back(queue.front());
      queue.erase(queue.begin());
    }
  });
  loop().spawn([&] {
    for (int i = 1; i <= 3; ++i) {
      this_fiber::sleep_for(1ms);
      std::lock_guard lock(m);
      queue.push_back(i);
      cv.notify_one();
    }
  });
  loop().run();
  EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
}

TEST_F(Sync, ConditionVariableWaitForAndNotifyAll) {
  run([] {
    Mutex m;
    ConditionVariable cv;
    std::unique_lock lock(m);
    EXPECT_FALSE(cv.wait_for(lock, 10ms));
    EXPECT_TRUE(lock.owns_lock());
    bool go = false;
    int woken = 0;
    std::vector<Task<void>> waiters;
    for (int i = 0; i < 3; ++i) {
      waiters.push_back(spawn([&] {
        std::unique_lock l(m);
        cv.wait(l, [&] { return go; });
        ++woken;
      }));
    }
    lock.unlock();
    this_fiber::yield();
    {
      std::lock_guard l(m);
      go = true;
      cv.notify_all();
    }
    for (auto& w : waiters) w.join();
    EXPECT_EQ(woken, 3);
    EXPECT_TRUE(cv.wait_for(lock = std::unique_lock(m), 10ms, [&] { return go; }));
  });
}

TEST_F(Sync, ConditionVariableCancelledWaiterHoldsTheMutexAgainWhenItThrows) {
  Mutex m;
  ConditionVariable cv;
  bool held_in_catch = false;
  run([&] {
    auto waiter = spawn([&] {
      std::unique_lock lock(m);
      try {
        cv.wait(lock);
      } catch (const Cancelled&) {
        held_in_catch = lock.owns_lock();
        throw;
      }
    });
    this_fiber::yield();
    m.lock();  // the waiter must take the mutex back before it throws
    waiter.cancel();
    this_fiber::yield();
    EXPECT_FALSE(waiter.done());
    m.unlock();
    EXPECT_THROW(waiter.join(), Cancelled);
  });
  EXPECT_TRUE(held_in_catch);
}

TEST_F(Sync, SemaphoreBoundsConcurrencyToExactlyN) {
  Semaphore slots(3);
  int inside = 0, max_inside = 0;
  for (int i = 0; i < 20; ++i) {
    loop().spawn([&] {
      slots.acquire();
      ++inside;
      max_inside = std::max(max_inside, inside);
      this_fiber::sleep_for(1ms);
      --inside;
      slots.release();
    });
  }
  loop().run();
  EXPECT_EQ(max_inside, 3);
  EXPECT_EQ(slots.available(), 3u);
}

TEST_F(Sync, CancelledSemaphoreWaiterLosesNoPermit) {
  Semaphore s(0);
  std::string trace;
  run([&] {
    auto a = spawn([&] {
      s.acquire();
      trace += "a";
    });
    auto b = spawn([&] {
      s.acquire();
      trace += "b";
    });
    this_fiber::yield();
    a.cancel();   // leaves the queue at once
    s.release();  // so the permit goes to b
    EXPECT_THROW(a.join(), Cancelled);
    b.join();
  });
  EXPECT_EQ(trace, "b");
  EXPECT_EQ(s.available(), 0u);
  EXPECT_FALSE(s.try_acquire());
}

TEST_F(Sync, SemaphorePermitReachingACancelledWaiterIsKeptByIt) {
  // release() first, cancel second: the waiter got the permit; the cancel
  // is delivered at its next suspension point. The permit is not lost: the
  // waiter holds it (and here gives it back as it unwinds).
  Semaphore s(0);
  run([&] {
    auto a = spawn([&] {
      s.acquire();
      struct Give {
        Semaphore& s;
        ~Give() { s.release(); }
      } give{s};
      this_fiber::yield();
    });
    this_fiber::yield();
    s.release();
    a.cancel();
    EXPECT_THROW(a.join(), Cancelled);
  });
  EXPECT_EQ(s.available(), 1u);
}

TEST_F(Sync, WaitGroup) {
  WaitGroup wg;
  int done = 0;
  run([&] {
    for (int i = 0; i < 5; ++i) {
      wg.add();
      spawn([&, i] {
        this_fiber::sleep_for(std::chrono::milliseconds(i));
        ++done;
        wg.done();
      });
    }
    wg.wait();
    EXPECT_EQ(done, 5);
    wg.wait();  // zero: at once
    EXPECT_THROW(wg.done(), std::logic_error);
  });
}

TEST_F(Sync, EveryWaitHonoursWithTimeout) {
  run([] {
    Mutex m;
    ConditionVariable cv;
    Semaphore s(0);
    WaitGroup wg;
    wg.add();
    Event e;
    m.lock();
    auto holder_is_other = spawn([&] {
      EXPECT_THROW(with_timeout(5ms, [&] { m.lock(); }), TimeoutError);
      EXPECT_THROW(with_timeout(5ms, [&] { s.acquire(); }), TimeoutError);
      EXPECT_THROW(with_timeout(5ms, [&] { wg.wait(); }), TimeoutError);
      EXPECT_THROW(with_timeout(5ms, [&] { e.wait(); }), TimeoutError);
    });
    holder_is_other.join();
    std::unique_lock lock(m, std::adopt_lock);
    EXPECT_THROW(with_timeout(5ms, [&] { cv.wait(lock); }), TimeoutError);
    EXPECT_TRUE(lock.owns_lock());
    wg.done();
  });
}

TEST(SyncMisuse, WaitingOutsideAFiber) {
  Loop loop;
  Event e;
  EXPECT_THROW(e.wait(), std::logic_error);
  Semaphore s(0);
  EXPECT_THROW(s.acquire(), std::logic_error);
}

}  // namespace
}  // namespace fiberloop
