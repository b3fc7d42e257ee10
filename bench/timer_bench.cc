// Time: the timer heap under load, sleeping fibers en masse, the cost of a
// timeout that does not fire, and waking a loop from another thread. Peers:
// std::priority_queue, Boost.Fiber's sleep, a condition-variable hand-off.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <boost/fiber/all.hpp>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <queue>
#include <random>
#include <thread>
#include <vector>

#include "fiberloop.h"
#include "loop/internal/timer_heap.h"

namespace {
using namespace std::chrono_literals;
using fiberloop::Clock;
using fiberloop::internal::TimerHeap;
using fiberloop::internal::TimerNode;
using Seconds = std::chrono::duration<double>;

constexpr int kBatch = 1000;  // timed operations between untimed clean-ups

std::vector<fiberloop::TimePoint> random_deadlines(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<fiberloop::TimePoint> out(n);
  for (auto& t : out) t = fiberloop::TimePoint{} + std::chrono::microseconds(rng() % 10'000'000);
  return out;
}

// A heap holding `pending` timers, as a loop with that many sleepers has.
struct LoadedHeap {
  explicit LoadedHeap(std::size_t pending)
      : nodes(pending), deadlines(random_deadlines(pending, 1)) {
    for (std::size_t i = 0; i < pending; ++i) heap.push(nodes[i], deadlines[i]);
  }
  TimerHeap heap;
  std::vector<TimerNode> nodes;
  std::vector<fiberloop::TimePoint> deadlines;
};

void BM_timer_insert(benchmark::State& state) {
  LoadedHeap loaded(static_cast<std::size_t>(state.range(0)));
  std::vector<TimerNode> batch(kBatch);
  const auto deadlines = random_deadlines(kBatch, 2);
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) loaded.heap.push(batch[i], deadlines[i]);
    state.PauseTiming();
    for (auto& n : batch) loaded.heap.remove(n);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_timer_insert)->Arg(1'000)->Arg(1'000'000);

void BM_timer_cancel(benchmark::State& state) {
  LoadedHeap loaded(static_cast<std::size_t>(state.range(0)));
  std::vector<TimerNode> batch(kBatch);
  const auto deadlines = random_deadlines(kBatch, 3);
  for (auto _ : state) {
    state.PauseTiming();
    for (int i = 0; i < kBatch; ++i) loaded.heap.push(batch[i], deadlines[i]);
    state.ResumeTiming();
    for (auto& n : batch) loaded.heap.remove(n);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_timer_cancel)->Arg(1'000)->Arg(1'000'000);

void BM_priority_queue_push(benchmark::State& state) {
  const auto pending = static_cast<std::size_t>(state.range(0));
  const auto base = random_deadlines(pending, 1);
  const auto deadlines = random_deadlines(kBatch, 2);
  // Room for the batch, so that no push reallocates.
  auto fresh = [&] {
    std::vector<fiberloop::TimePoint> v;
    v.reserve(pending + kBatch);
    v.assign(base.begin(), base.end());
    return std::priority_queue<fiberloop::TimePoint>(std::less<fiberloop::TimePoint>(),
                                                     std::move(v));
  };
  auto q = fresh();
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) q.push(deadlines[i]);
    state.PauseTiming();
    q = fresh();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_priority_queue_push)->Arg(1'000'000)->Iterations(20);

// call_later + cancel through the public API, with 1M callbacks pending.
void BM_fiberloop_call_later_cancel(benchmark::State& state) {
  fiberloop::Loop loop;
  std::vector<fiberloop::TimerHandle> pending;
  for (int i = 0; i < 1'000'000; ++i) pending.push_back(loop.call_later(1h + i * 1us, [] {}));
  for (auto _ : state) loop.call_later(30min, [] {}).cancel();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_fiberloop_call_later_cancel);

// n fibers spawned, then each sleeps 10 ms; wall time until all are done.
double fiberloop_sleepers(int n) {
  const auto start = Clock::now();
  fiberloop::run([n] {
    std::vector<fiberloop::Task<void>> tasks;
    tasks.reserve(n);
    for (int i = 0; i < n; ++i) {
      tasks.push_back(fiberloop::spawn([] { fiberloop::this_fiber::sleep_for(10ms); }));
    }
    for (auto& t : tasks) t.join();
  });
  return Seconds(Clock::now() - start).count();
}

long rss_bytes() {
  long pages = 0, resident = 0;
  std::ifstream("/proc/self/statm") >> pages >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

// Warm: after one untimed burst, the thread's stack pool holds every stack
// the burst needs. The figure the target is about.
void BM_fiberloop_sleepers_10ms(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  fiberloop_sleepers(n);  // warm-up
  // The whole process's resident memory with every sleeper's stack pooled:
  // an upper bound on what the burst needs (earlier benchmarks add to it).
  const long rss = rss_bytes();
  for (auto _ : state) state.SetIterationTime(fiberloop_sleepers(n));
  state.SetItemsProcessed(state.iterations() * n);
  state.counters["process_rss_MiB"] = static_cast<double>(rss) / (1 << 20);
}
BENCHMARK(BM_fiberloop_sleepers_10ms)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->UseManualTime()
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

// Cold: on a fresh thread, so every stack is new memory (page faults and
// guard installs: ~2.4 us per stack on this VM, measured alone).
void BM_fiberloop_sleepers_10ms_cold(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  for (auto _ : state) {
    double seconds = 0;
    std::thread([&] { seconds = fiberloop_sleepers(n); }).join();
    state.SetIterationTime(seconds);
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_fiberloop_sleepers_10ms_cold)
    ->Arg(100'000)
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

void BM_boost_fiber_sleepers_10ms(benchmark::State& state) {
  const auto n = static_cast<int>(state.range(0));
  for (auto _ : state) {
    double seconds = 0;
    std::thread([&] {
      const auto start = Clock::now();
      std::vector<boost::fibers::fiber> fibers;
      fibers.reserve(n);
      for (int i = 0; i < n; ++i) fibers.emplace_back([] { boost::this_fiber::sleep_for(10ms); });
      for (auto& f : fibers) f.join();
      seconds = Seconds(Clock::now() - start).count();
    }).join();
    state.SetIterationTime(seconds);
  }
  state.SetItemsProcessed(state.iterations() * n);
}
// 30k: Boost.Fiber's stacks are one mapping each (vm.max_map_count).
BENCHMARK(BM_boost_fiber_sleepers_10ms)
    ->Arg(30'000)
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

void BM_fiberloop_yield_alone(benchmark::State& state) {
  fiberloop::run([&] {
    for (auto _ : state) fiberloop::this_fiber::yield();
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_fiberloop_yield_alone);

void BM_fiberloop_with_timeout_yield(benchmark::State& state) {
  fiberloop::run([&] {
    for (auto _ : state) fiberloop::with_timeout(1s, [] { fiberloop::this_fiber::yield(); });
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_fiberloop_with_timeout_yield);

void pin_this_thread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::pthread_setaffinity_np(::pthread_self(), sizeof(set), &set);
}

int cpu_for(int thread, bool across) {
  const int cpus = static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN));
  return across && cpus > 1 ? (cpus - 1 - thread) : cpus - 1;
}

// Two threads, each with a blocked Loop; a message goes from one loop to the
// other and back through call_soon_threadsafe (an eventfd wake-up each way).
void BM_call_soon_threadsafe_round_trip(benchmark::State& state) {
  const bool across = state.range(0) != 0;
  fiberloop::Loop* far = nullptr;
  std::mutex ready_mutex;
  std::condition_variable ready_cv;
  std::thread echo([&] {
    pin_this_thread(cpu_for(1, across));
    fiberloop::Loop loop;
    {
      std::lock_guard lock(ready_mutex);
      far = &loop;
    }
    ready_cv.notify_one();
    auto keep = loop.keep_alive();
    loop.run();  // until stopped
  });
  {
    std::unique_lock lock(ready_mutex);
    ready_cv.wait(lock, [&] { return far != nullptr; });
  }
  pin_this_thread(cpu_for(0, across));
  {
    fiberloop::Loop near;
    auto keep = near.keep_alive();  // the fiber waits on posts from the other thread
    near.run_until_complete([&] {
      auto& core = *fiberloop::internal::Scheduler::current();
      auto* self = core.running();
      for (auto _ : state) {
        far->call_soon_threadsafe([&] { near.call_soon_threadsafe([&] { core.wake(*self); }); });
        core.park();
      }
    });
  }
  far->stop();
  echo.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_call_soon_threadsafe_round_trip)->Arg(0)->Arg(1)->UseRealTime();

// Posts from a plain thread into a busy loop (one that never blocks, so no
// post writes the eventfd): the cost of a post on both sides, the node it
// travels in included. The two threads on two CPUs.
void BM_call_soon_threadsafe_busy(benchmark::State& state) {
  const bool across = state.range(0) != 0;
  std::atomic<fiberloop::Loop*> far{nullptr};
  std::atomic<std::uint64_t> handled{0};
  std::atomic<bool> done{false};
  std::thread consumer([&] {
    pin_this_thread(cpu_for(1, across));
    fiberloop::Loop loop;
    loop.run_until_complete([&] {
      far.store(&loop);
      while (!done.load(std::memory_order_relaxed)) fiberloop::this_fiber::yield();
    });
  });
  pin_this_thread(cpu_for(0, across));
  while (far.load() == nullptr) std::this_thread::yield();
  std::uint64_t posted = 0;
  for (auto _ : state) {
    far.load()->call_soon_threadsafe(
        [&handled] { handled.fetch_add(1, std::memory_order_relaxed); });
    // Never more than a batch ahead of the consumer, so that the figure is
    // the steady state of a queue being drained, not of one growing.
    if (++posted - handled.load(std::memory_order_relaxed) > 256) {
      while (posted - handled.load(std::memory_order_relaxed) > 64) std::this_thread::yield();
    }
  }
  while (handled.load() != posted) std::this_thread::yield();
  done.store(true);
  consumer.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_call_soon_threadsafe_busy)->Arg(1)->UseRealTime();

// The peer: a round trip through a mutex and condition variable per side.
void BM_condvar_round_trip(benchmark::State& state) {
  const bool across = state.range(0) != 0;
  std::mutex m;
  std::condition_variable cv;
  int turn = 0;  // 0: near's, 1: far's, -1: stop
  std::thread echo([&] {
    pin_this_thread(cpu_for(1, across));
    std::unique_lock lock(m);
    for (;;) {
      cv.wait(lock, [&] { return turn != 0; });
      if (turn < 0) return;
      turn = 0;
      cv.notify_all();
    }
  });
  pin_this_thread(cpu_for(0, across));
  for (auto _ : state) {
    std::unique_lock lock(m);
    turn = 1;
    cv.notify_all();
    cv.wait(lock, [&] { return turn == 0; });
  }
  {
    std::lock_guard lock(m);
    turn = -1;
  }
  cv.notify_all();
  echo.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_condvar_round_trip)->Arg(0)->Arg(1)->UseRealTime();

}  // namespace
