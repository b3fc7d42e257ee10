// The timer heap: order, ties, removal from anywhere.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <utility>
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

// Pushes (some at TimePoint::max(), which queue nothing), removals (the
// newest node, often still in the last slot, whose removal is inline, or any
// other) and pops interleaved at random, against an ordered set of
// (deadline, insertion number): the heap pops what the set says, in its
// order, and each node knows whether it is queued.
TEST(TimerHeap, InterleavedOperationsMatchAnOrderedSet) {
  std::mt19937 rng(7);
  TimerHeap heap;
  std::vector<Tagged> nodes(300);
  for (int i = 0; i < 300; ++i) nodes[i].tag = i;
  std::set<std::pair<int, int>> model;  // (deadline ms, insertion number)
  std::vector<int> deadline_of(300), number_of(300);
  std::vector<int> newest;  // queued nodes, in insertion order
  int inserted = 0;
  for (int step = 0; step < 20000; ++step) {
    const unsigned op = rng() % 8;
    if (op < 4) {
      Tagged& n = nodes[rng() % nodes.size()];
      if (n.queued()) continue;
      if (rng() % 10 == 0) {
        heap.push(n, TimePoint::max());
        ASSERT_FALSE(n.queued());
        continue;
      }
      deadline_of[n.tag] = static_cast<int>(rng() % 50);  // many ties
      number_of[n.tag] = inserted++;
      heap.push(n, at(deadline_of[n.tag]));
      model.insert({deadline_of[n.tag], number_of[n.tag]});
      newest.push_back(n.tag);
    } else if (op < 7 && !newest.empty()) {
      // A third of the removals take the newest node, as a with_timeout's end does.
      const std::size_t k = op == 4 ? newest.size() - 1 : rng() % newest.size();
      const int tag = newest[k];
      newest.erase(newest.begin() + static_cast<std::ptrdiff_t>(k));
      heap.remove(nodes[tag]);
      ASSERT_FALSE(nodes[tag].queued());
      model.erase({deadline_of[tag], number_of[tag]});
    } else {
      const int now = static_cast<int>(rng() % 50);
      TimerNode* popped = heap.pop_expired(at(now));
      if (model.empty() || model.begin()->first > now) {
        ASSERT_EQ(popped, nullptr) << "step " << step;
        continue;
      }
      ASSERT_NE(popped, nullptr) << "step " << step;
      const int tag = static_cast<Tagged*>(popped)->tag;
      ASSERT_EQ(std::make_pair(deadline_of[tag], number_of[tag]), *model.begin())
          << "step " << step;
      ASSERT_FALSE(popped->queued());
      model.erase(model.begin());
      newest.erase(std::find(newest.begin(), newest.end(), tag));
    }
    ASSERT_EQ(heap.size(), model.size());
    if (!model.empty()) {
      ASSERT_EQ(heap.next_deadline(), at(model.begin()->first));
    }
  }
}

}  // namespace
}  // namespace fiberloop::internal
