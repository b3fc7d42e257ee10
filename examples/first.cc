// The README's first program: three workers, each yielding twice, joined in order.
#include <cstdio>
#include <string>
#include <vector>

#include <fiberloop/fiberloop.h>

int main() {
  return fiberloop::run([] {
    std::vector<fiberloop::Task<std::string>> workers;
    for (int i = 0; i < 3; ++i) {
      workers.push_back(fiberloop::spawn([i] {
        for (int step = 0; step < 2; ++step) fiberloop::this_fiber::yield();  // let others run
        return "worker " + std::to_string(i) + " done";
      }));
    }
    for (auto& w : workers) std::puts(w.join().c_str());  // values (or exceptions) come back
    return 0;
  });
}
