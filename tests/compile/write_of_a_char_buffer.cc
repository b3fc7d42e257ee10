// expect: one-error a char buffer's length is ambiguous
// A mutable char buffer passed as data: all of it, or the text up to its
// first NUL (a buffer snprintf filled)? Refused with one message saying how
// to say which.
#include <cstdio>

#include "fiberloop.h"

void send_line(fiberloop::Stream& out, int n) {
  char line[64];
  std::snprintf(line, sizeof line, "%d\n", n);
  out.write(line);
}

int main() {}
