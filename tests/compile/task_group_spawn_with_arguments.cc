// expect: error spawn takes a callable with no arguments
// TaskGroup::spawn gets the same one message as the free spawn().
#include "fiberloop.h"

void f(int) {}

int main() {
  fiberloop::run([] {
    fiberloop::TaskGroup group;
    group.spawn(f, 21);
  });
}
