// expect: ok
// The option structs take designated initializers that name only some
// fields, with no -Wmissing-field-initializers warning under -Wextra.
#include "fiberloop.h"

int main() {
  fiberloop::SpawnOptions spawn{.name = "x"};
  fiberloop::StackOptions stack{.size = 65536};
  fiberloop::LoopOptions loop{.stack = stack};
  fiberloop::TcpListener::Options listen{.reuse_port = true};
  (void)spawn;
  (void)loop;
  (void)listen;
}
