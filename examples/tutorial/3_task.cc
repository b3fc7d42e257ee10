// Tutorial step 3: tasks. spawn() runs a function as a fiber; join() waits
// for it and returns its value, or rethrows its exception.
#include <cstdio>
#include <stdexcept>

#include <fiberloop/fiberloop.h>

using namespace fiberloop;

int slow_square(int x) {
  this_fiber::yield();  // let the other tasks run a little
  return x * x;
}

int main() {
  return run([] {
    Task<int> nine = spawn([] { return slow_square(3); });
    Task<int> broken = spawn([]() -> int { throw std::runtime_error("no square today"); });
    std::printf("result: %d\n", nine.join());  // result: 9
    try {
      broken.join();
    } catch (const std::runtime_error& e) {
      std::printf("error: %s\n", e.what());  // error: no square today
    }
    return 0;
  });
}
