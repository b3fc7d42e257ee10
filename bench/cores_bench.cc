// Every core: fiberloop's LoopGroup against threads and Boost.Fiber, each
// figure a ratio within one run. Two loops (or threads) pinned to CPUs 0 and
// 1; the benchmarks' own thread is unpinned while they run.
//
//   ./bazelw run -c opt //bench:cores_bench
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <boost/fiber/all.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "fiberloop.h"

namespace {

// Lets the calling thread (and the threads it starts) use every online CPU
// while it lives: //bench:report pins itself to one.
class EveryCpu {
 public:
  EveryCpu() {
    ::sched_getaffinity(0, sizeof saved_, &saved_);
    cpu_set_t all;
    CPU_ZERO(&all);
    for (long cpu = 0; cpu < ::sysconf(_SC_NPROCESSORS_ONLN); ++cpu) CPU_SET(cpu, &all);
    ::sched_setaffinity(0, sizeof all, &all);
  }
  ~EveryCpu() { ::sched_setaffinity(0, sizeof saved_, &saved_); }

 private:
  cpu_set_t saved_;
};

void pin_this_thread(int cpu) {
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu % static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)), &one);
  ::pthread_setaffinity_np(::pthread_self(), sizeof one, &one);
}

fiberloop::GroupOptions loops(std::size_t n) {
  fiberloop::GroupOptions options;
  options.loops = n;
  return options;
}

// ---- cross-loop unbuffered channel round trip ---------------------------------

// Loop 0 sends, loop 1 echoes. range(0) == 1: each loop also runs a fiber
// that only yields, so neither ever blocks in its poll (busy loops receive
// posts without a syscall); 0: both idle between messages (the eventfd).
void BM_cores_channel_round_trip(benchmark::State& state) {
  const bool busy = state.range(0) != 0;
  EveryCpu every_cpu;
  fiberloop::LoopGroup group(loops(2));
  fiberloop::Channel<int> ping, pong;
  std::atomic<bool> done{false};
  std::vector<fiberloop::Task<void>> spinners;
  if (busy) {
    for (std::size_t i = 0; i < 2; ++i) {
      spinners.push_back(group.spawn_on(i, [&done] {
        while (!done.load(std::memory_order_relaxed)) fiberloop::this_fiber::yield();
      }));
    }
  }
  auto echo = group.spawn_on(1, [&] {
    while (auto v = ping.recv()) pong.send(*v);
  });
  group.run([&] {
    for (auto _ : state) {
      ping.send(1);
      benchmark::DoNotOptimize(pong.recv());
    }
    ping.close();
  });
  echo.join();
  done = true;
  for (auto& s : spinners) s.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_cores_channel_round_trip)->Arg(1)->Arg(0)->UseRealTime();

// The same hand-off between two plain threads on CPUs 0 and 1: a mutex, a
// condition variable and a turn flag.
void BM_cores_condvar_round_trip(benchmark::State& state) {
  std::mutex m;
  std::condition_variable cv;
  int turn = 0;  // 1: the echo thread's
  bool done = false;
  std::thread echo([&] {
    pin_this_thread(1);
    std::unique_lock lock(m);
    for (;;) {
      cv.wait(lock, [&] { return turn == 1 || done; });
      if (done) return;
      turn = 0;
      cv.notify_all();
    }
  });
  pin_this_thread(0);
  {
    std::unique_lock lock(m);
    for (auto _ : state) {
      turn = 1;
      cv.notify_all();
      cv.wait(lock, [&] { return turn == 0; });
    }
    done = true;
    cv.notify_all();
  }
  echo.join();
  EveryCpu restore;  // (the destructor keeps the saved mask: undo our pin)
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_cores_condvar_round_trip)->UseRealTime();

// Boost.Fiber: unbuffered_channel between fibers of two threads.
void BM_cores_boost_fiber_channel_round_trip(benchmark::State& state) {
  EveryCpu every_cpu;
  boost::fibers::unbuffered_channel<int> ping, pong;
  std::thread echo([&] {
    pin_this_thread(1);
    boost::fibers::fiber([&] {
      int v;
      while (ping.pop(v) == boost::fibers::channel_op_status::success) pong.push(v);
    }).join();
  });
  std::thread driver([&] {
    pin_this_thread(0);
    boost::fibers::fiber([&] {
      for (auto _ : state) {
        ping.push(1);
        int v;
        pong.pop(v);
        benchmark::DoNotOptimize(v);
      }
      ping.close();
    }).join();
  });
  driver.join();
  echo.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_cores_boost_fiber_channel_round_trip)->UseRealTime();

// ---- buffered throughput, producer loop to consumer loop ----------------------

constexpr std::size_t kBuffer = 64;

void BM_cores_buffered_throughput(benchmark::State& state) {
  EveryCpu every_cpu;
  fiberloop::LoopGroup group(loops(2));
  fiberloop::Channel<int> ch(kBuffer);
  auto consumer = group.spawn_on(1, [&ch] {
    long sum = 0;
    while (auto v = ch.recv()) sum += *v;
    return sum;
  });
  group.run([&] {
    for (auto _ : state) ch.send(1);
    ch.close();
  });
  benchmark::DoNotOptimize(consumer.join());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_cores_buffered_throughput)->UseRealTime();

void BM_cores_boost_fiber_buffered_throughput(benchmark::State& state) {
  EveryCpu every_cpu;
  boost::fibers::buffered_channel<int> ch(kBuffer);
  long sum = 0;
  std::thread consumer([&] {
    pin_this_thread(1);
    boost::fibers::fiber([&] {
      int v;
      while (ch.pop(v) == boost::fibers::channel_op_status::success) sum += v;
    }).join();
  });
  std::thread producer([&] {
    pin_this_thread(0);
    boost::fibers::fiber([&] {
      for (auto _ : state) ch.push(1);
      ch.close();
    }).join();
  });
  producer.join();
  consumer.join();
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_cores_boost_fiber_buffered_throughput)->UseRealTime();

// A mutex + deque + condition variable queue, bounded like the channels.
void BM_cores_mutex_deque_throughput(benchmark::State& state) {
  std::mutex m;
  std::condition_variable not_empty, not_full;
  std::deque<int> q;
  bool closed = false;
  long sum = 0;
  std::thread consumer([&] {
    pin_this_thread(1);
    std::unique_lock lock(m);
    for (;;) {
      not_empty.wait(lock, [&] { return !q.empty() || closed; });
      if (q.empty()) return;
      sum += q.front();
      q.pop_front();
      not_full.notify_one();
    }
  });
  {
    EveryCpu restore;
    pin_this_thread(0);
    for (auto _ : state) {
      std::unique_lock lock(m);
      not_full.wait(lock, [&] { return q.size() < kBuffer; });
      q.push_back(1);
      not_empty.notify_one();
    }
    {
      std::lock_guard lock(m);
      closed = true;
    }
    not_empty.notify_one();
  }
  consumer.join();
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_cores_mutex_deque_throughput)->UseRealTime();

// ---- skynet: 1M leaf fibers, a 10-ary tree ------------------------------------

constexpr std::int64_t kLeaves = 1'000'000;

std::int64_t skynet_fiberloop(std::int64_t num, std::int64_t size) {
  if (size == 1) return num;
  std::vector<fiberloop::Task<std::int64_t>> children;
  children.reserve(10);
  const std::int64_t part = size / 10;
  for (std::int64_t i = 0; i < 10; ++i) {
    children.push_back(
        fiberloop::spawn([num, part, i] { return skynet_fiberloop(num + i * part, part); }));
  }
  std::int64_t sum = 0;
  for (auto& c : children) sum += c.join();
  return sum;
}

// range(0) loops; the top level's ten subtrees spread over them.
void BM_cores_skynet(benchmark::State& state) {
  EveryCpu every_cpu;
  fiberloop::LoopGroup group(loops(static_cast<std::size_t>(state.range(0))));
  const auto skynet = [&group] {
    return group.run([&group] {
      std::vector<fiberloop::Task<std::int64_t>> top;
      const std::int64_t part = kLeaves / 10;
      for (std::int64_t i = 0; i < 10; ++i) {
        top.push_back(group.spawn_on(static_cast<std::size_t>(i) % group.size(),
                                     [part, i] { return skynet_fiberloop(i * part, part); }));
      }
      std::int64_t s = 0;
      for (auto& t : top) s += t.join();
      return s;
    });
  };
  // Untimed first: the loops' record and stack pools start cold, and a
  // million first touches of fresh pages would measure the kernel.
  if (skynet() != kLeaves * (kLeaves - 1) / 2) state.SkipWithError("skynet: wrong sum");
  for (auto _ : state) {
    if (skynet() != kLeaves * (kLeaves - 1) / 2) state.SkipWithError("skynet: wrong sum");
  }
  state.SetItemsProcessed(state.iterations() * kLeaves);
}
BENCHMARK(BM_cores_skynet)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(3)
    ->Repetitions(3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Small stacks, as skynet needs: Boost's default (128 KiB, from malloc) would
// leave the process tens of GiB larger after a million fibers.
constexpr std::size_t kBoostStack = 16 * 1024;

std::int64_t skynet_boost(std::int64_t num, std::int64_t size) {
  if (size == 1) return num;
  std::vector<boost::fibers::future<std::int64_t>> children;
  children.reserve(10);
  const std::int64_t part = size / 10;
  for (std::int64_t i = 0; i < 10; ++i) {
    children.push_back(
        boost::fibers::async(boost::fibers::launch::post, std::allocator_arg,
                             boost::fibers::fixedsize_stack(kBoostStack),
                             [num, part, i] { return skynet_boost(num + i * part, part); }));
  }
  std::int64_t sum = 0;
  for (auto& c : children) sum += c.get();
  return sum;
}

// Boost.Fiber's work-stealing scheduler on two threads. It can be set up
// only once per process (its threads are counted in a static), so the two
// threads live as long as the process and take one skynet at a time.
class BoostWorkStealing {
 public:
  static BoostWorkStealing& instance() {
    static auto* pool = new BoostWorkStealing;  // never destroyed: its threads run on
    return *pool;
  }
  std::int64_t skynet() {
    std::unique_lock lock(m_);
    result_.reset();
    job_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return result_.has_value(); });
    return *result_;
  }

 private:
  BoostWorkStealing() {
    EveryCpu every_cpu;
    for (int cpu = 0; cpu < 2; ++cpu) {
      std::thread([this, cpu] {
        pin_this_thread(cpu);
        boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(2);
        for (;;) {
          {  // idle: no fibers anywhere, so blocking the thread blocks nothing
            std::unique_lock lock(m_);
            cv_.wait(lock, [&] { return cpu == 0 ? job_ : running_; });
            if (cpu == 0) {
              job_ = false;
              running_ = true;
              cv_.notify_all();
            }
          }
          if (cpu == 0) {
            const std::int64_t sum = skynet_boost(0, kLeaves);
            std::lock_guard lock(m_);
            running_ = false;
            result_ = sum;
            cv_.notify_all();
          } else {
            // Lets this thread's scheduler run (and steal) fibers meanwhile.
            while (true) {
              {
                std::lock_guard lock(m_);
                if (!running_) break;
              }
              boost::this_fiber::sleep_for(std::chrono::microseconds(100));
            }
          }
        }
      }).detach();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  bool job_ = false;
  bool running_ = false;
  std::optional<std::int64_t> result_;
};

void BM_cores_boost_fiber_skynet(benchmark::State& state) {
  BoostWorkStealing& pool = BoostWorkStealing::instance();
  (void)pool.skynet();  // untimed first, as fiberloop's
  for (auto _ : state) {
    if (pool.skynet() != kLeaves * (kLeaves - 1) / 2) state.SkipWithError("skynet: wrong sum");
  }
  state.SetItemsProcessed(state.iterations() * kLeaves);
}
BENCHMARK(BM_cores_boost_fiber_skynet)
    ->Iterations(1)
    ->Repetitions(1)  // about 10 s a run
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
