// expect: error spawn takes a callable with no arguments
// Loop::spawn gets the same one message as the free spawn().
#include "fiberloop.h"

void f(int) {}

int main() {
  fiberloop::Loop loop;
  loop.spawn(f, 21).join();
}
