// Synchronization: channels, mutex, event. Peers: Boost.Fiber's channels and
// mutex, in the same binary.
#include <benchmark/benchmark.h>

#include <boost/fiber/all.hpp>
#include <mutex>
#include <optional>

#include "fiberloop.h"

namespace {

// Two fibers bounce a message over two channels of capacity range(0) (0:
// unbuffered, a rendezvous); per message.
void BM_fiberloop_ping_pong(benchmark::State& state) {
  const auto capacity = static_cast<std::size_t>(state.range(0));
  fiberloop::run([&] {
    fiberloop::Channel<int> ping(capacity), pong(capacity);
    auto echo = fiberloop::spawn([&] {
      while (auto v = ping.recv()) pong.send(*v);
    });
    for (auto _ : state) {
      ping.send(1);
      benchmark::DoNotOptimize(pong.recv());
    }
    ping.close();
    echo.join();
  });
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_fiberloop_ping_pong)->Arg(0)->Name("BM_fiberloop_unbuffered_ping_pong");
BENCHMARK(BM_fiberloop_ping_pong)->Arg(2)->Name("BM_fiberloop_buffered_ping_pong");

// The same with Boost.Fiber's channels.
template <class Channel>
void boost_ping_pong(benchmark::State& state, Channel& ping, Channel& pong) {
  boost::fibers::fiber echo([&] {
    int v;
    while (ping.pop(v) == boost::fibers::channel_op_status::success) pong.push(v);
  });
  for (auto _ : state) {
    ping.push(1);
    int v;
    pong.pop(v);
    benchmark::DoNotOptimize(v);
  }
  ping.close();
  echo.join();
  state.SetItemsProcessed(state.iterations() * 2);
}

void BM_boost_fiber_unbuffered_ping_pong(benchmark::State& state) {
  boost::fibers::unbuffered_channel<int> ping, pong;
  boost_ping_pong(state, ping, pong);
}
BENCHMARK(BM_boost_fiber_unbuffered_ping_pong);

void BM_boost_fiber_buffered_ping_pong(benchmark::State& state) {
  boost::fibers::buffered_channel<int> ping(2), pong(2);  // capacity: a power of 2
  boost_ping_pong(state, ping, pong);
}
BENCHMARK(BM_boost_fiber_buffered_ping_pong);

// Producer/consumer throughput through a buffered channel of capacity 64.
void BM_fiberloop_buffered_throughput(benchmark::State& state) {
  fiberloop::run([&] {
    fiberloop::Channel<int> ch(64);
    auto consumer = fiberloop::spawn([&] {
      long sum = 0;
      while (auto v = ch.recv()) sum += *v;
      return sum;
    });
    for (auto _ : state) ch.send(1);
    ch.close();
    benchmark::DoNotOptimize(consumer.join());
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_fiberloop_buffered_throughput);

void BM_boost_fiber_buffered_throughput(benchmark::State& state) {
  boost::fibers::buffered_channel<int> ch(64);
  long sum = 0;
  boost::fibers::fiber consumer([&] {
    int v;
    while (ch.pop(v) == boost::fibers::channel_op_status::success) sum += v;
  });
  for (auto _ : state) ch.push(1);
  ch.close();
  consumer.join();
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_boost_fiber_buffered_throughput);

void BM_fiberloop_mutex_uncontended(benchmark::State& state) {
  fiberloop::run([&] {
    fiberloop::Mutex m;
    for (auto _ : state) {
      m.lock();
      m.unlock();
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_fiberloop_mutex_uncontended);

void BM_boost_fiber_mutex_uncontended(benchmark::State& state) {
  boost::fibers::mutex m;
  for (auto _ : state) {
    m.lock();
    m.unlock();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_boost_fiber_mutex_uncontended);

// Two fibers take turns: each holds the mutex across a yield, so every lock
// is a hand-off from the other. Per hand-off.
void BM_fiberloop_mutex_handoff(benchmark::State& state) {
  fiberloop::run([&] {
    fiberloop::Mutex m;
    bool done = false;
    auto other = fiberloop::spawn([&] {
      while (!done) {
        std::lock_guard lock(m);
        fiberloop::this_fiber::yield();
      }
    });
    for (auto _ : state) {
      std::lock_guard lock(m);
      fiberloop::this_fiber::yield();
    }
    done = true;
    other.join();
  });
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_fiberloop_mutex_handoff);

void BM_boost_fiber_mutex_handoff(benchmark::State& state) {
  boost::fibers::mutex m;
  bool done = false;
  boost::fibers::fiber other([&] {
    while (!done) {
      std::lock_guard lock(m);
      boost::this_fiber::yield();
    }
  });
  for (auto _ : state) {
    std::lock_guard lock(m);
    boost::this_fiber::yield();
  }
  done = true;
  other.join();
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_boost_fiber_mutex_handoff);

// One fiber sets an Event another waits on; per set -> waiter running.
void BM_fiberloop_event_wake(benchmark::State& state) {
  fiberloop::run([&] {
    fiberloop::Event go, back;
    bool done = false;
    auto waiter = fiberloop::spawn([&] {
      for (;;) {
        go.wait();
        go.clear();
        if (done) return;
        back.set();
      }
    });
    for (auto _ : state) {
      go.set();
      back.wait();
      back.clear();
    }
    done = true;
    go.set();
    waiter.join();
  });
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_fiberloop_event_wake);

// select over two buffered channels that both hold a value: the choice among
// ready cases (random, as Go's), one receive, and refilling what it took.
// No switch: ns per select.
void BM_fiberloop_select_two_ready(benchmark::State& state) {
  fiberloop::run([&] {
    fiberloop::Channel<int> a(1), b(1);
    a.send(1);
    b.send(2);
    std::optional<int> va, vb;
    for (auto _ : state) {
      const std::size_t won = fiberloop::select(a.recv_case(va), b.recv_case(vb));
      (void)(won == 0 ? a.try_send(*va) : b.try_send(*vb));
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_fiberloop_select_two_ready);

}  // namespace
