// expect: error a fiber cannot return a reference
// The same, its Task used: the first error is still the one that says what
// to do.
#include "fiberloop.h"

int global = 0;

int main() {
  fiberloop::run([] { fiberloop::spawn([]() -> int& { return global; }).join(); });
}
