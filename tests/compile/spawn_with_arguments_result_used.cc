// expect: error spawn takes a callable with no arguments
// spawn(f, 21) whose result is used: the first error is still the one that
// says what to do (it came second, after "void value not ignored").
#include "fiberloop.h"

int f(int x) { return x; }

int main() {
  return fiberloop::run([] { return fiberloop::spawn(f, 21).join(); });
}
