// The cost of a switch: fiberloop's yield through the ready queue against the
// raw Boost.Context switch (the limit), swapcontext and Boost.Fiber, and how
// the yield cost grows with the number of ready fibers. All figures are per
// switch (one fiber handing the CPU to another).
#include <benchmark/benchmark.h>
#include <ucontext.h>

#include <boost/context/detail/fcontext.hpp>
#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>
#include <boost/fiber/all.hpp>
#include <memory>
#include <vector>

#include "fiberloop.h"

namespace {
namespace bctx = boost::context;

// Two fibers of one Loop yielding to each other: each iteration is 2 yields.
void BM_fiberloop_yield(benchmark::State& state) {
  const auto fibers = static_cast<int>(state.range(0));
  fiberloop::Loop loop;
  bool done = false;
  for (int i = 1; i < fibers; ++i) {
    loop.spawn([&] {
      while (!done) fiberloop::this_fiber::yield();
    });
  }
  loop.run_until_complete([&] {
    for (auto _ : state) fiberloop::this_fiber::yield();
    done = true;
  });
  loop.run();
  state.SetItemsProcessed(state.iterations() * fibers);
}
BENCHMARK(BM_fiberloop_yield)->Arg(2);
BENCHMARK(BM_fiberloop_yield)
    ->RangeMultiplier(10)
    ->Range(10, 1'000'000)
    ->Name("BM_fiberloop_yield_many");

bctx::detail::transfer_t raw_bounce(bctx::detail::transfer_t t) {
  for (;;) t = bctx::detail::jump_fcontext(t.fctx, nullptr);
}

// The raw fcontext switch: main and one context jump back and forth.
void BM_raw_jump_fcontext(benchmark::State& state) {
  constexpr std::size_t kSize = 64 * 1024;
  auto stack = std::make_unique<char[]>(kSize);
  bctx::detail::fcontext_t ctx = bctx::detail::make_fcontext(
      stack.get() + kSize, kSize, [](bctx::detail::transfer_t t) { raw_bounce(t); });
  for (auto _ : state) ctx = bctx::detail::jump_fcontext(ctx, nullptr).fctx;
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_raw_jump_fcontext);

// boost::context::fiber::resume, the safe API over the same switch.
void BM_raw_fiber_resume(benchmark::State& state) {
  bctx::fiber f(std::allocator_arg, bctx::fixedsize_stack(64 * 1024), [](bctx::fiber&& c) {
    for (;;) c = std::move(c).resume();
    return std::move(c);
  });
  for (auto _ : state) f = std::move(f).resume();
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_raw_fiber_resume);

ucontext_t uc_main, uc_other;
void uc_bounce() {
  for (;;) swapcontext(&uc_other, &uc_main);
}

void BM_swapcontext(benchmark::State& state) {
  constexpr std::size_t kSize = 64 * 1024;
  auto stack = std::make_unique<char[]>(kSize);
  getcontext(&uc_other);
  uc_other.uc_stack.ss_sp = stack.get();
  uc_other.uc_stack.ss_size = kSize;
  uc_other.uc_link = nullptr;
  makecontext(&uc_other, uc_bounce, 0);
  for (auto _ : state) swapcontext(&uc_main, &uc_other);
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_swapcontext);

// Boost.Fiber: two fibers on the default round-robin scheduler.
void BM_boost_fiber_yield(benchmark::State& state) {
  bool done = false;
  boost::fibers::fiber other([&] {
    while (!done) boost::this_fiber::yield();
  });
  for (auto _ : state) boost::this_fiber::yield();
  done = true;
  other.join();
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_boost_fiber_yield);

}  // namespace
