// A group's close meets waits that only another loop can end: a fiber that
// cannot be interrupted until another loop answers it is unwound once the
// answer comes, within the shutdown's grace (it was abandoned at once),
// and loops that abandon fibers at the same moment do so safely.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "fiberloop.h"
#include "tests/group_helpers.h"

namespace fiberloop {
namespace {

using namespace std::chrono_literals;

using testing::unpinned;

// Counts the fibers whose stacks were unwound (an abandoned fiber's never is).
struct Unwound {
  std::atomic<int>& count;
  ~Unwound() { ++count; }
};

// Keeps the CPU for `d` without a suspension point: the loop answers
// nothing meanwhile.
void compute_for(Duration d) {
  const TimePoint until = Clock::now() + d;
  while (Clock::now() < until) {
  }
}

void wait_for(const std::atomic<bool>& flag) {
  while (!flag.load()) std::this_thread::yield();
}

constexpr int kRounds = 5;

// A fiber's first use of a primitive made on another loop waits for that
// loop to share it (SyncHome), and cannot be interrupted meanwhile. Here
// that loop is computing when the group is destroyed.
TEST(GroupClose, AFirstUseOfAPrimitiveOfAnotherLoopIsUnwound) {
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<int> unwound{0};
    std::unique_ptr<Channel<int>> channel;
    {
      LoopGroup group(unpinned(2));
      channel.reset(group.spawn_on(1, [] { return new Channel<int>(); }).join());
      std::atomic<bool> computing{false}, receiving{false};
      group
          .spawn_on(1,
                    [&] {
                      computing = true;
                      compute_for(20ms);
                    })
          .detach();
      wait_for(computing);
      group
          .spawn_on(0,
                    [&] {
                      Unwound guard{unwound};
                      receiving = true;
                      (void)channel->recv();  // its first use on loop 0
                    })
          .detach();
      wait_for(receiving);
      std::this_thread::sleep_for(1ms);
    }
    EXPECT_EQ(unwound.load(), 1) << "round " << round;
  }
}

// A cancelled condition-variable waiter takes its mutex back before it
// leaves, and cannot be interrupted meanwhile. Here a fiber of the other
// loop holds the mutex, computing, when the group is destroyed.
TEST(GroupClose, AConditionWaiterRetakingAMutexHeldOnAnotherLoopIsUnwound) {
  for (int round = 0; round < kRounds; ++round) {
    Mutex mutex;
    ConditionVariable cv;
    std::atomic<int> unwound{0};
    {
      LoopGroup group(unpinned(2));
      std::atomic<bool> waiting{false}, holding{false};
      group
          .spawn_on(0,
                    [&] {
                      Unwound guard{unwound};
                      std::unique_lock lock(mutex);
                      waiting = true;
                      cv.wait(lock);
                    })
          .detach();
      wait_for(waiting);
      group
          .spawn_on(1,
                    [&] {
                      std::lock_guard lock(mutex);  // once the waiter has let go of it
                      holding = true;
                      compute_for(20ms);
                    })
          .detach();
      wait_for(holding);
    }
    EXPECT_EQ(unwound.load(), 1) << "round " << round;
  }
}

// A fiber that catches every Cancelled is abandoned by its loop's close;
// a group's loops close at the same moment, each on its own thread, and
// keep what they abandon in one list (unlocked, TSan saw a race there).
TEST(GroupClose, LoopsAbandoningFibersAtOnce) {
  for (int round = 0; round < 3; ++round) {
    std::optional<Task<void>> stubborn[2];
    {
      LoopGroup group(unpinned(2));
      std::atomic<int> started{0};
      for (std::size_t i = 0; i < 2; ++i) {
        stubborn[i].emplace(group.spawn_on(i, [&] {
          ++started;
          for (;;) {
            try {
              this_fiber::sleep_for(1s);
            } catch (const Cancelled&) {
            }
          }
        }));
      }
      while (started.load() != 2) std::this_thread::yield();
    }
    for (auto& task : stubborn) EXPECT_THROW(task->join(), std::logic_error);
  }
}

}  // namespace
}  // namespace fiberloop
