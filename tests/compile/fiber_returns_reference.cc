// expect: error a fiber cannot return a reference
// A fiber whose callable returns a reference gets the clear message first.
#include "fiberloop.h"

int global = 0;

int main() {
  fiberloop::run([] { fiberloop::spawn([]() -> int& { return global; }).join(); });
}
