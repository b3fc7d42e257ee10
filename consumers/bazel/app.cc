// A program in a Bazel workspace of its own that depends on fiberloop as
// the README's "Using fiberloop from another Bazel workspace" says (its
// WORKSPACE, BUILD and .bazelrc here are the README's, word for word; CI
// fills in FIBERLOOP). Three fibers pass a token round a ring of channels.
#include <cstdio>

#include <fiberloop/fiberloop.h>

int main() {
  return fiberloop::run([] {
    fiberloop::Channel<int> a, b, c;
    auto pass = [](fiberloop::Channel<int>& in, fiberloop::Channel<int>& out) {
      while (auto token = in.recv()) {
        if (*token == 0) break;
        out.send(*token - 1);
      }
      out.close();
    };
    auto t1 = fiberloop::spawn([&] { pass(a, b); });
    auto t2 = fiberloop::spawn([&] { pass(b, c); });
    int last = -1;
    auto t3 = fiberloop::spawn([&] {
      while (auto token = c.recv()) {
        last = *token;
        if (*token == 0) break;
        a.send(*token - 1);
      }
      a.close();
    });
    a.send(29);  // the third fiber sees 27, 24, ... 0
    t1.join(), t2.join(), t3.join();
    std::printf("the token went round the ring down to %d\n", last);
    return last == 0 ? 0 : 1;
  });
}
