// The type-erased entry of a fiber: runs the callable that spawn() placed in
// the record (or on the heap), and stores what it returned or threw.
#pragma once

#include <exception>
#include <functional>
#include <new>
#include <type_traits>

#include "loop/internal/fiber_record.h"
#include "loop/internal/loop_core.h"

namespace fiberloop {
class Loop;
}

namespace fiberloop::internal {

template <class Fn, class R>
struct FiberBody {
  static void run(FiberRecord* f, bool run) noexcept {
    Fn& fn = *static_cast<Fn*>(f->callable);
    if (run) {
      try {
        enter_body(*f);
        if constexpr (std::is_void_v<R>) {
          std::invoke(std::move(fn));
        } else {
          f->result.emplace<R>(std::invoke(std::move(fn)));
        }
      } catch (...) {
        f->error = std::current_exception();
      }
    }
    fn.~Fn();
    f->free_callable();
  }
};

}  // namespace fiberloop::internal
