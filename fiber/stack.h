// Stack options for fibers and generators.
//
//   fiberloop::SpawnOptions opts;
//   opts.stack = fiberloop::StackOptions{.size = 64 * 1024};
#pragma once

#include <cstddef>

namespace fiberloop {

// How a fiber's stack is made. Stacks are mmap'ed and committed lazily (a fiber
// that touches one page costs one page), pooled and reused.
struct StackOptions {
  // Usable bytes, rounded up to whole pages. A fiber that needs more overflows
  // into its guard page.
  std::size_t size = 256 * 1024;
  // A no-access page below the stack, so an overflow faults instead of
  // corrupting memory. Installed with MADV_GUARD_INSTALL (no extra mapping)
  // where the kernel has it, else mprotect; see README "Stacks".
  bool guard_page = true;
};

}  // namespace fiberloop
