// Tutorial step 6: sleep. Sleeping parks the fiber on the loop's timer heap;
// three sleeps of 300, 100 and 200 ms take 300 ms together, not 600.
#include <chrono>
#include <cstdio>
#include <vector>

#include <fiberloop/fiberloop.h>

using namespace fiberloop;
using namespace std::chrono_literals;

int main() {
  return run([] {
    const TimePoint start = Clock::now();
    std::vector<Task<void>> sleepers;
    for (int ms : {300, 100, 200}) {
      sleepers.push_back(spawn([ms] {
        this_fiber::sleep_for(std::chrono::milliseconds(ms));
        std::printf("slept %d ms\n", ms);  // 100, then 200, then 300
      }));
    }
    for (auto& s : sleepers) s.join();
    const Duration took = Clock::now() - start;  // about 300 ms
    std::puts(took < 550ms ? "they slept at the same time" : "they slept one after another?!");
    return 0;
  });
}
