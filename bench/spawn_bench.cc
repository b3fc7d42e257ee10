// The cost of a fiber's life: spawn + join with a warm pool, a cold burst of
// 100k, and the memory a parked fiber holds. Peers: Boost.Context with a
// pooled stack (the limit), Boost.Fiber, std::thread.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <boost/context/fiber.hpp>
#include <boost/context/pooled_fixedsize_stack.hpp>
#include <boost/fiber/all.hpp>
#include <chrono>
#include <fstream>
#include <thread>
#include <vector>

#include "fiberloop.h"

namespace {
namespace bctx = boost::context;
using Seconds = std::chrono::duration<double>;

void BM_fiberloop_spawn_join(benchmark::State& state) {
  fiberloop::run([&] {
    for (auto _ : state) fiberloop::spawn([] {}).join();
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_fiberloop_spawn_join);

void BM_boost_context_create_run(benchmark::State& state) {
  bctx::pooled_fixedsize_stack stacks(256 * 1024);
  for (auto _ : state) {
    bctx::fiber f(std::allocator_arg, stacks, [](bctx::fiber&& c) { return std::move(c); });
    f = std::move(f).resume();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_boost_context_create_run);

void BM_boost_fiber_spawn_join(benchmark::State& state) {
  for (auto _ : state) boost::fibers::fiber([] {}).join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_boost_fiber_spawn_join);

void BM_std_thread_create_join(benchmark::State& state) {
  for (auto _ : state) std::thread([] {}).join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_std_thread_create_join);

// Spawns `n` fibers then joins them all, on a fresh thread so that its stack
// pool starts empty (cold: every stack is new memory). Returns seconds.
double fiberloop_cold_burst(int n) {
  double seconds = 0;
  std::thread([&] {
    auto start = std::chrono::steady_clock::now();
    fiberloop::run([n] {
      std::vector<fiberloop::Task<void>> tasks;
      tasks.reserve(n);
      for (int i = 0; i < n; ++i) tasks.push_back(fiberloop::spawn([] {}));
      for (auto& t : tasks) t.join();
    });
    seconds = Seconds(std::chrono::steady_clock::now() - start).count();
  }).join();
  return seconds;
}

void BM_fiberloop_spawn_100k_cold(benchmark::State& state) {
  for (auto _ : state) state.SetIterationTime(fiberloop_cold_burst(100'000));
  state.SetItemsProcessed(state.iterations() * 100'000);
}
BENCHMARK(BM_fiberloop_spawn_100k_cold)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

void BM_boost_fiber_spawn_100k_cold(benchmark::State& state) {
  for (auto _ : state) {
    double seconds = 0;
    std::thread([&] {
      auto start = std::chrono::steady_clock::now();
      std::vector<boost::fibers::fiber> fibers;
      fibers.reserve(100'000);
      for (int i = 0; i < 100'000; ++i) fibers.emplace_back([] {});
      for (auto& f : fibers) f.join();
      seconds = Seconds(std::chrono::steady_clock::now() - start).count();
    }).join();
    state.SetIterationTime(seconds);
  }
  state.SetItemsProcessed(state.iterations() * 100'000);
}
BENCHMARK(BM_boost_fiber_spawn_100k_cold)
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

long rss_bytes() {
  long pages = 0, resident = 0;
  std::ifstream("/proc/self/statm") >> pages >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

// Resident memory per parked fiber, with default options, on a fresh thread.
void BM_fiberloop_rss_per_parked_fiber(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  double per_fiber = 0;
  for (auto _ : state) {
    std::thread([&] {
      fiberloop::Loop loop;
      fiberloop::Event never;
      const long before = rss_bytes();
      for (int i = 0; i < n; ++i) loop.spawn([&never] { never.wait(); });
      loop.spawn([&loop] { loop.stop(); });  // runs once every fiber above has parked
      loop.run();
      per_fiber = static_cast<double>(rss_bytes() - before) / n;
    }).join();  // ~Loop cancels and unwinds them
  }
  state.counters["rss_per_fiber_bytes"] = per_fiber;
}
BENCHMARK(BM_fiberloop_rss_per_parked_fiber)
    ->Repetitions(1)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

void BM_boost_fiber_rss_per_parked_fiber(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  double per_fiber = 0;
  for (auto _ : state) {
    std::thread([&] {
      boost::fibers::mutex m;
      boost::fibers::condition_variable cv;
      bool go = false;
      const long before = rss_bytes();
      std::vector<boost::fibers::fiber> fibers;
      for (int i = 0; i < n; ++i) {
        fibers.emplace_back([&] {
          std::unique_lock<boost::fibers::mutex> lock(m);
          cv.wait(lock, [&] { return go; });
        });
      }
      boost::this_fiber::yield();  // every fiber parks
      per_fiber = static_cast<double>(rss_bytes() - before) / n;
      {
        std::unique_lock<boost::fibers::mutex> lock(m);
        go = true;
      }
      cv.notify_all();
      for (auto& f : fibers) f.join();
    }).join();
  }
  state.counters["rss_per_fiber_bytes"] = per_fiber;
}
// Boost.Fiber's default stacks are one mapping each: 30k stays under vm.max_map_count.
BENCHMARK(BM_boost_fiber_rss_per_parked_fiber)
    ->Arg(30'000)
    ->Iterations(1)
    ->Repetitions(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
