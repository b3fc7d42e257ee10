// fiberloop needs C++20. Every public header includes this first, so that a
// build with an older -std stops here with one message that says what to do
// (fiberloop.h then skips the rest).
#pragma once

#if __cplusplus < 202002L
#error "fiberloop needs C++20: compile with -std=c++20 (or later)"
#endif
