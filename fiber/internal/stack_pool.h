// Fiber stacks: mmap'ed in slabs, committed lazily, guarded, pooled.
//
// Guard policy: each stack has one no-access page below it. Where the kernel
// has MADV_GUARD_INSTALL (Linux >= 6.13) the guard costs no extra mapping, so
// a million guarded stacks fit in vm.max_map_count. Elsewhere the guard is an
// mprotect'ed page, which splits a mapping (two more per stack); once that
// would leave the process short of mappings (a margin of max_map_count / 8
// stays free), stacks are handed out unguarded and one warning line says why.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "fiber/internal/context.h"
#include "fiber/stack.h"

namespace fiberloop::internal {

enum class GuardMethod : std::uint8_t { kGuardInstall, kMprotect, kNone };

struct StackPoolStats {
  std::size_t outstanding = 0;   // stacks handed out and not yet released
  std::size_t pooled = 0;        // free stacks kept for reuse
  std::size_t mapped_bytes = 0;  // address space reserved by slabs
  std::size_t slabs = 0;
  std::size_t unguarded = 0;  // stacks handed out without a guard page
};

class StackPool {
 public:
  // `method` forces a guard method (tests); by default the best one the kernel has.
  explicit StackPool(GuardMethod method = best_guard_method()) noexcept;
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // The pool of the calling thread; fibers and generators take stacks from it.
  static StackPool& this_thread() noexcept;
  // The calling thread's pool if it has been made, else null. Async-signal-safe.
  static StackPool* this_thread_if_any() noexcept;

  // Whether `address` lies in the guard page of one of this pool's stacks;
  // if so, *stack_bytes is that stack's size. Async-signal-safe (reads only).
  bool guard_page_of(const void* address, std::size_t* stack_bytes) const noexcept;

  // Hands out a stack, reusing a released one of the same shape when it can.
  // Throws: std::system_error when the kernel refuses the memory (the message
  //         names the size and suggests a smaller StackOptions::size).
  Stack acquire(const StackOptions& options) {
    // Fast path, inline: a pooled stack of the shape asked for last.
    if (last_class_ < classes_.size()) {
      SizeClass& sc = classes_[last_class_];
      if (sc.size == options.size && sc.guard == want_guard(options) && !sc.free.empty()) {
        Stack stack = sc.free.back();
        sc.free.pop_back();
        if (sc.cold > sc.free.size()) sc.cold = sc.free.size();
        ++slabs_[stack.slab].outstanding;
        ++outstanding_;
        return stack;
      }
    }
    return acquire_slow(options);
  }

  // Takes a stack back. Its pages stay committed until trim().
  void release(Stack stack) noexcept {
    --slabs_[stack.slab].outstanding;
    --outstanding_;
    ++released_since_trim_;
    classes_[stack.size_class].free.push_back(stack);
  }

  // Gives the physical pages of pooled stacks beyond the `keep` most recently
  // released back to the kernel (one madvise per run of adjacent stacks). The
  // address space stays reserved; slabs with no stack outstanding are unmapped.
  void trim(std::size_t keep) noexcept;
  // Whether trim(keep) would find anything to do: stacks were released since
  // the last trim and more than `keep` are pooled. Cheap; call it first.
  bool trim_worthwhile(std::size_t keep) const noexcept {
    return released_since_trim_ != 0 && outstanding_ + keep < total_carved();
  }

  StackPoolStats stats() const noexcept;

  // How deep `stack` has been used: the bytes from its top down to the
  // lowest page ever touched (pages stay committed once touched; one
  // mincore(2) call). 0 if it cannot tell.
  static std::size_t high_water(const Stack& stack) noexcept;
  GuardMethod guard_method() const noexcept { return method_; }

  static GuardMethod best_guard_method() noexcept;

 private:
  struct Slab {
    char* base;
    std::size_t bytes;
    std::size_t outstanding;             // stacks of this slab handed out
    std::size_t slot = 0;                // bytes per stack, guard page included
    bool guarded = false;                // each slot starts with a guard page
    std::vector<unsigned> valgrind_ids;  // stacks registered with Valgrind, when under it
  };
  // Stacks of one shape (size, guard) and the slab being carved.
  struct SizeClass {
    std::size_t size;
    bool guard;
    std::vector<Stack> free;     // released; most recent at the back
    std::size_t cold = 0;        // free[0, cold) have had their pages trimmed
    char* carve_next = nullptr;  // next unused slot of the newest slab
    std::size_t carve_left = 0;
    std::uint32_t carve_slab = 0;  // which slab carve_next is in
  };

  Stack acquire_slow(const StackOptions& options);
  bool want_guard(const StackOptions& options) const noexcept {
    return options.guard_page && method_ != GuardMethod::kNone;
  }
  std::uint16_t size_class(std::size_t size, bool guard);
  void map_slab(SizeClass& sc);
  bool install_guard(char* page) noexcept;
  void unmap_idle_slabs(SizeClass& sc, std::size_t keep) noexcept;
  void unmap(Slab& slab) noexcept;

  GuardMethod method_;
  std::vector<SizeClass> classes_;
  std::uint16_t last_class_ = 0;  // the class asked for last: usually the only one
  std::vector<Slab> slabs_;       // an unmapped slab keeps its slot with base == nullptr
  std::size_t total_carved() const noexcept;
  std::size_t outstanding_ = 0;
  std::size_t released_since_trim_ = 0;
  std::size_t unguarded_ = 0;
  bool warned_budget_ = false;
  std::optional<std::size_t> mprotect_budget_;  // guards left, read on first use
};

}  // namespace fiberloop::internal
