// expect: one-error fiberloop needs C++20
// std: c++17
// Compiling with less than C++20 stops at one #error line.
#include "fiberloop.h"

int main() {}
