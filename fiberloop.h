// fiberloop: stackful fibers on an event loop. Plain sequential code, a
// hundred thousand tasks on one core.
//
//   #include "fiberloop.h"
//   int main() {
//     return fiberloop::run([] {
//       auto t = fiberloop::spawn([] { return 42; });
//       return t.join() == 42 ? 0 : 1;
//     });
//   }
#pragma once

// fiberloop needs C++20: an older -std stops here, at one line that says so.
// So does a compiler whose standard library lacks std::source_location (what
// every spawn records), such as Clang 14 with libstdc++ 12.
#if __cplusplus < 202002L
#error "fiberloop needs C++20: compile with -std=c++20 (or later)"
#else
#include <version>
#if !defined(__cpp_lib_source_location)
#error \
    "fiberloop needs std::source_location, which this compiler and standard library lack: use GCC 11 or later, or Clang 16 or later"
#else

#include "fiber/generator.h"
#include "fiber/stack.h"
#include "io/buffered_reader.h"
#include "io/file.h"
#include "io/process.h"
#include "io/resolve.h"
#include "io/socket_address.h"
#include "io/socket_stream.h"
#include "io/stream.h"
#include "io/tcp.h"
#ifndef FIBERLOOP_NO_TLS  // (a CMake build without OpenSSL)
#include "io/tls.h"
#endif
#include "io/udp.h"
#include "io/unix.h"
#include "io/wait.h"
#include "loop/errors.h"
#include "loop/loop.h"
#include "loop/loop_group.h"
#include "loop/options.h"
#include "loop/run_blocking.h"
#include "loop/task.h"
#include "loop/this_fiber.h"
#include "loop/timeout.h"
#include "loop/timer_handle.h"
#include "sync/channel.h"
#include "sync/condition_variable.h"
#include "sync/event.h"
#include "sync/future.h"
#include "sync/gather.h"
#include "sync/mutex.h"
#include "sync/nursery.h"
#include "sync/select.h"
#include "sync/semaphore.h"
#include "sync/task_group.h"
#include "sync/wait_group.h"

#endif  // std::source_location
#endif  // C++20
