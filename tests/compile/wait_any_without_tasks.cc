// expect: error wait_any needs at least one task
// wait_any() of nothing could never return: the compiler stops it.
#include "fiberloop.h"

int main() {
  fiberloop::run([] { fiberloop::wait_any(); });
}
