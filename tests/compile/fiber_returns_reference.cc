// expect: one-error a fiber cannot return a reference
// A fiber whose callable returns a reference: one message, saying what to
// return instead (it was the first of four).
#include "fiberloop.h"

int global = 0;

int main() {
  fiberloop::run([] { fiberloop::spawn([]() -> int& { return global; }); });
}
