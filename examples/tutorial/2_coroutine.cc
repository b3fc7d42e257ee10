// Tutorial step 2: a coroutine that receives values (Python's send()).
#include <cstdio>

#include <fiberloop/fiberloop.h>

// Receives numbers and yields the running average after each.
using Averager = fiberloop::Generator<double, double>;

Averager averager() {
  return Averager([](Averager::Context& co) {
    double total = 0, count = 0, average = 0;
    for (;;) {
      const double value = co.yield(average);  // suspends; resumes with what send() passed
      total += value;
      average = total / ++count;
    }
  });
}

int main() {
  Averager avg = averager();
  avg.next();                          // run to the first yield ("priming", as in Python)
  std::printf("%g\n", *avg.send(10));  // 10
  std::printf("%g\n", *avg.send(30));  // 20
  std::printf("%g\n", *avg.send(5));   // 15
}
