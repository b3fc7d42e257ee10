// The program tests/gdb/gdb_test.sh debugs: a loop with fibers parked in
// known places, and a LoopGroup with one parked on its loop 1, stopped (by a
// breakpoint on gdb_stop_here) while they wait.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "fiberloop.h"

// Where gdb stops. extern "C", noinline: easy to break on.
extern "C" [[gnu::noinline]] void gdb_stop_here() { asm volatile("" ::: "memory"); }

// Parks on the event; `fiberloop bt` must show this function.
[[gnu::noinline]] void wait_in_a_named_function(fiberloop::Event& e) {
  e.wait();
  asm volatile("" ::: "memory");  // keeps the frame: no tail call
}

int main(int argc, char** argv) {
  // --abort: dump core where gdb would stop (for the core-file test).
  const bool abort_there = argc > 1 && std::string_view(argv[1]) == "--abort";
  using namespace fiberloop;
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return 1;
  // A group of two loops beside the lone one, with a fiber parked on loop 1.
  GroupOptions two;
  two.loops = 2;
  two.pin_threads = false;
  LoopGroup group(two);
  Event group_never;
  SpawnOptions on_one;
  on_one.name = "group-waiter";
  auto g = group.spawn_on(1, on_one, [&] { group_never.wait(); });
  fiberloop::run([&] {
    while (group.stats_per_loop()[1].fibers_alive == 0)
      this_fiber::sleep_for(std::chrono::milliseconds(1));
    Event never;
    SpawnOptions waiter;
    waiter.name = "event-waiter";
    auto a = spawn(waiter, [&] { wait_in_a_named_function(never); });
    SpawnOptions reader;
    reader.name = "pipe-reader";
    auto b = spawn(reader, [&] { wait_readable(pipe_fds[0]); });
    this_fiber::yield();  // both park
    gdb_stop_here();
    if (abort_there) std::abort();
    a.cancel();
    b.cancel();
  });
  g.cancel();
  std::puts("gdb_target: done");
  return 0;
}
