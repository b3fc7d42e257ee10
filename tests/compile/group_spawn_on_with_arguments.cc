// expect: error spawn takes a callable with no arguments
// LoopGroup::spawn_on gets the same one message as the free spawn().
#include "fiberloop.h"

void f(int) {}

int main() {
  fiberloop::LoopGroup group;
  group.spawn_on(0, f, 21).join();
}
