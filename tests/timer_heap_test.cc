// The timer heap: order, ties, removal from anywhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "loop/internal/timer_heap.h"

namespace fiberloop::internal {
namespace {

struct Tagged : TimerNode {
  int tag = 0;
};

TimePoint at(int ms) { return TimePoint{} + std::chrono::milliseconds(ms); }

std::vector<int> drain(TimerHeap& heap, TimePoint now) {
  std::vector<int> order;
  while (TimerNode* n = heap.pop_expired(now)) order.push_back(static_cast<Tagged*>(n)->tag);
  return order;
}

TEST(TimerHeap, PopsInDeadlineOrderAndOnlyWhenDue) {
  TimerHeap heap;
  std::vector<Tagged> nodes(5);
  const int deadlines[] = {30, 10, 50, 20, 40};
  for (int i = 0; i < 5; ++i) {
    nodes[i].tag = deadlines[i];
    heap.push(nodes[i], at(deadlines[i]));
  }
  EXPECT_EQ(heap.next_deadline(), at(10));
  EXPECT_EQ(drain(heap, at(25)), (std::vector<int>{10, 20}));
  EXPECT_EQ(drain(heap, at(100)), (std::vector<int>{30, 40, 50}));
  EXPECT_TRUE(heap.empty());
}

TEST(TimerHeap, TiesFireInInsertionOrder) {
  TimerHeap heap;
  std::vector<Tagged> nodes(20);
  for (int i = 0; i < 20; ++i) {
    nodes[i].tag = i;
    heap.push(nodes[i], at(7));
  }
  std::vector<int> expected(20);
  for (int i = 0; i < 20; ++i) expected[i] = i;
  EXPECT_EQ(drain(heap, at(7)), expected);
}

TEST(TimerHeap, CancelInTheMiddleKeepsOrder) {
  std::mt19937 rng(42);
  TimerHeap heap;
  std::vector<Tagged> nodes(2000);
  for (int i = 0; i < 2000; ++i) {
    nodes[i].tag = static_cast<int>(rng() % 100000);
    heap.push(nodes[i], at(nodes[i].tag));
  }
  std::vector<int> kept;
  for (int i = 0; i < 2000; ++i) {
    if (i % 3 == 0) {
      heap.remove(nodes[i]);
      EXPECT_FALSE(nodes[i].queued());
    } else {
      kept.push_back(nodes[i].tag);
    }
  }
  heap.remove(nodes[0]);  // removing twice is a no-op
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(drain(heap, at(1'000'000)), kept);
}

TEST(TimerHeap, ANodeCanBeQueuedAgainAfterItFires) {
  TimerHeap heap;
  Tagged n;
  heap.push(n, at(1));
  EXPECT_EQ(heap.pop_expired(at(1)), &n);
  EXPECT_FALSE(n.queued());
  heap.push(n, at(2));
  EXPECT_TRUE(n.queued());
  EXPECT_EQ(heap.size(), 1u);
  heap.remove(n);
}

}  // namespace
}  // namespace fiberloop::internal
