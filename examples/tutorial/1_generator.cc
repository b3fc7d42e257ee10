// Tutorial step 1: a generator produces values one at a time, when asked.
#include <cstdio>

#include <fiberloop/fiberloop.h>

using fiberloop::Generator;

Generator<int> generate_numbers(int n) {
  return Generator<int>([n](Generator<int>::Context& co) {
    std::puts("starting generating numbers...");
    for (int i = 0; i < n; ++i) co.yield(i);  // hands i out and suspends here
  });
}

int main() {
  Generator<int> g = generate_numbers(3);           // nothing printed yet: the body has not started
  std::printf("%d\n", *g.next());                   // starting generating numbers... 0
  std::printf("%d\n", *g.next());                   // 1
  std::printf("%d\n", *g.next());                   // 2
  std::printf("%s\n", g.next() ? "more" : "done");  // done: Python's StopIteration
  for (int v : generate_numbers(2)) std::printf("again %d\n", v);
}
