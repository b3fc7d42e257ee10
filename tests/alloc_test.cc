// The hot paths allocate nothing in steady state: spawn and join (of a
// connection handler's closure too), yield, timers and with_timeout, a read
// that parks on readiness, and a channel hand-off between two loops. This
// binary replaces the global operator new to count the allocations each
// thread makes; every case warms up first (pools, the ready queue's ring,
// the timer heap's vector grow once) and then must make none.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>

#include "fiberloop.h"
#include "tests/group_helpers.h"

namespace {

constinit thread_local std::size_t t_allocations = 0;

void* counted(std::size_t n, std::size_t align) {
  ++t_allocations;
  void* p = align <= alignof(std::max_align_t)
                ? std::malloc(n == 0 ? 1 : n)
                : std::aligned_alloc(align, (n + align - 1) / align * align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(std::size_t n) { return counted(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) {
  return counted(n, static_cast<std::size_t>(a));
}
// The nothrow forms too: left to the sanitizer's, what they allocate would
// come back through the free() below (alloc-dealloc-mismatch under ASan).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted(n, 0);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return counted(n, static_cast<std::size_t>(a));
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace fiberloop {
namespace {

using namespace std::chrono_literals;
using testing::connected_pair;

constexpr int kRounds = 200;

// Runs `step` kRounds times to warm up, then kRounds times counted.
// Returns: the allocations this thread made in the counted rounds.
template <class Step>
std::size_t allocations_in_steady_state(Step step) {
  for (int i = 0; i < kRounds; ++i) step();
  const std::size_t before = t_allocations;
  for (int i = 0; i < kRounds; ++i) step();
  return t_allocations - before;
}

TEST(Allocations, SpawnAndJoin) {
  run([] {
    int runs = 0;
    EXPECT_EQ(allocations_in_steady_state([&] { spawn([&runs] { ++runs; }).join(); }), 0u);
    EXPECT_EQ(runs, 2 * kRounds);
  });
}

// The closure every server spawns: a connection and a reference or two. It
// is larger than a TcpStream, which is larger than 64 bytes.
static_assert(sizeof(TcpStream) + 2 * sizeof(void*) > 64);

TEST(Allocations, SpawnOfAConnectionHandlersClosure) {
  run([] {
    auto [conn, peer] = connected_pair();
    TcpStream back;
    int handled = 0;
    EXPECT_EQ(allocations_in_steady_state([&] {
                spawn([&back, &handled, c = std::move(conn)]() mutable {
                  ++handled;
                  back = std::move(c);
                }).join();
                conn = std::move(back);
              }),
              0u);
    EXPECT_EQ(handled, 2 * kRounds);
    EXPECT_TRUE(conn.is_open());
  });
}

TEST(Allocations, YieldBetweenFibers) {
  run([] {
    bool done = false;
    auto other = spawn([&] {
      while (!done) this_fiber::yield();
    });
    EXPECT_EQ(allocations_in_steady_state([] { this_fiber::yield(); }), 0u);
    done = true;
    other.join();
  });
}

TEST(Allocations, TimersAndTimeouts) {
  run([] {
    EXPECT_EQ(allocations_in_steady_state([] { this_fiber::sleep_for(1us); }), 0u);
    EXPECT_EQ(allocations_in_steady_state([] { with_timeout(1s, [] { this_fiber::yield(); }); }),
              0u);
  });
}

TEST(Allocations, AReadThatParksOnReadiness) {
  run([] {
    auto [a, b] = connected_pair();
    char buf[64];
    // b's reader parks (nothing is there yet), then a's write wakes it.
    auto reader = [&] {
      for (;;) {
        if (b.read(buf) == 0) return;
        b.write_all({buf, 1});
      }
    };
    auto echo = spawn(reader);
    EXPECT_EQ(allocations_in_steady_state([&] {
                a.write_all("x");
                EXPECT_EQ(a.read(buf), 1u);
              }),
              0u);
    a.shutdown_write();
    echo.join();
  });
}

TEST(Allocations, AChannelHandOffBetweenTwoLoops) {
  LoopGroup group(testing::unpinned(2));
  Channel<int> to_1, to_0;  // unbuffered: every send waits for its receive
  std::atomic<std::size_t> loop_1_allocations{~std::size_t{0}};
  group.run([&] {
    auto echo = group.spawn_on(1, [&] {
      loop_1_allocations = allocations_in_steady_state([&] { to_0.send(*to_1.recv()); });
    });
    EXPECT_EQ(allocations_in_steady_state([&] {
                to_1.send(7);
                EXPECT_EQ(to_0.recv(), 7);
              }),
              0u);
    echo.join();
  });
  EXPECT_EQ(loop_1_allocations.load(), 0u);
}

}  // namespace
}  // namespace fiberloop
