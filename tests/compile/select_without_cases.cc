// expect: error select needs at least one case
// Go's `select {}` parks for ever; here an empty select is a mistake, and the
// compiler says so instead of a park no one can end.
#include "fiberloop.h"

int main() {
  fiberloop::run([] { fiberloop::select(); });
}
