// Tutorial step 4: the event loop itself. Callbacks run between fibers:
// call_soon in the next iteration, call_later after a delay. run() returns
// when nothing is left to do.
#include <chrono>
#include <cstdio>

#include <fiberloop/fiberloop.h>

using namespace std::chrono_literals;

int main() {
  fiberloop::Loop loop;
  loop.call_later(100ms, [] { std::puts("3: call_later(100 ms)"); });
  loop.call_soon([] { std::puts("1: call_soon"); });
  loop.spawn([] {
        std::puts("2: a fiber starts");
        fiberloop::this_fiber::sleep_for(200ms);
        std::puts("4: the fiber wakes after 200 ms");
      })
      .detach();
  loop.run();
  std::puts("5: run() returned: nothing left");
}
