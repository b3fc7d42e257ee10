// expect: one-error spawn takes a callable with no arguments
// The std::thread habit: spawn(f, 21) stops at one message saying what to do.
#include "fiberloop.h"

void f(int) {}

int main() {
  fiberloop::run([] { fiberloop::spawn(f, 21).join(); });
}
