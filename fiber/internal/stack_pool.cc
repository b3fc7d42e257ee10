#include "fiber/internal/stack_pool.h"

#include "fiber/internal/context.h"  // FIBERLOOP_ASAN
#include "fiber/internal/overflow_guard.h"

#if FIBERLOOP_ASAN
#include <sanitizer/lsan_interface.h>
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define FIBERLOOP_HAVE_VALGRIND 1
#endif

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>
#include <system_error>

namespace fiberloop::internal {
namespace {

// Valgrind's client requests, when its header is installed (Debian's
// valgrind package, which ./bazelw installs): without them memcheck loses
// track at the first switch onto a fiber's stack. No-ops without the header.
#if FIBERLOOP_HAVE_VALGRIND
bool running_on_valgrind() noexcept { return RUNNING_ON_VALGRIND != 0; }
unsigned show_stack_to_valgrind(void* bottom, void* top) noexcept {
  return VALGRIND_STACK_REGISTER(bottom, top);
}
void forget_stack_for_valgrind(unsigned id) noexcept { VALGRIND_STACK_DEREGISTER(id); }
#else
bool running_on_valgrind() noexcept { return false; }
unsigned show_stack_to_valgrind(void*, void*) noexcept { return 0; }
void forget_stack_for_valgrind(unsigned) noexcept {}
#endif

}  // namespace
namespace {

// glibc 2.36 predates MADV_GUARD_INSTALL (Linux 6.13); the value is ABI.
constexpr int kMadvGuardInstall = 102;
// A slab reserves about this much address space (never less than one stack).
constexpr std::size_t kSlabBytes = 16u << 20;

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

// `to` is a power of two (a page size).
std::size_t round_up(std::size_t n, std::size_t to) noexcept { return (n + to - 1) & ~(to - 1); }

}  // namespace

GuardMethod StackPool::best_guard_method() noexcept {
  static const GuardMethod method = [] {
    // Probe on a scratch mapping: EINVAL means the kernel lacks guard regions.
    const std::size_t page = page_size();
    void* p = ::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return GuardMethod::kMprotect;
    const bool ok = ::madvise(p, page, kMadvGuardInstall) == 0;
    ::munmap(p, 2 * page);
    return ok ? GuardMethod::kGuardInstall : GuardMethod::kMprotect;
  }();
  return method;
}

StackPool::StackPool(GuardMethod method) noexcept : method_(method) {}

StackPool::~StackPool() {
  for (Slab& slab : slabs_) {
    if (slab.base == nullptr) continue;
    if (slab.outstanding == 0) {
      unmap(slab);
    } else {
      // A stack still out belongs to a fiber or generator that was abandoned
      // (it would not unwind): it stays mapped, frames and all, for good.
      // LeakSanitizer is told to scan it, so that what those frames hold
      // (an exception in flight, say) is not reported as a leak.
#if FIBERLOOP_ASAN
      const std::size_t guard = slab.guarded ? page_size() : 0;
      for (std::size_t at = 0; at + slab.slot <= slab.bytes; at += slab.slot) {
        __lsan_register_root_region(slab.base + at + guard, slab.slot - guard);  // not the guard
      }
#endif
    }
  }
}

void StackPool::unmap(Slab& slab) noexcept {
  for (unsigned id : slab.valgrind_ids) forget_stack_for_valgrind(id);
  ::munmap(slab.base, slab.bytes);
  slab = Slab{nullptr, 0, 0, 0, false, {}};
}

namespace {
thread_local StackPool* tls_pool = nullptr;
}  // namespace

StackPool& StackPool::this_thread() noexcept {
  // Made on first use; its destructor (at thread exit) unmaps the slabs.
  static thread_local struct Owner {
    Owner() {
      install_overflow_guard();
      tls_pool = &pool;
    }
    ~Owner() {
      tls_pool = nullptr;
      remove_overflow_guard();
    }
    StackPool pool;
  } owner;
  return owner.pool;
}

StackPool* StackPool::this_thread_if_any() noexcept { return tls_pool; }

bool StackPool::guard_page_of(const void* address, std::size_t* stack_bytes) const noexcept {
  const auto* a = static_cast<const char*>(address);
  for (const Slab& slab : slabs_) {
    if (!slab.guarded || a < slab.base || a >= slab.base + slab.bytes) continue;
    const std::size_t offset = static_cast<std::size_t>(a - slab.base) % slab.slot;
    if (offset < page_size()) {
      *stack_bytes = slab.slot - page_size();
      return true;
    }
  }
  return false;
}

std::uint16_t StackPool::size_class(std::size_t size, bool guard) {
  if (last_class_ < classes_.size() && classes_[last_class_].size == size &&
      classes_[last_class_].guard == guard) {
    return last_class_;
  }
  for (std::size_t i = 0; i < classes_.size(); ++i) {
    if (classes_[i].size == size && classes_[i].guard == guard) {
      return last_class_ = static_cast<std::uint16_t>(i);
    }
  }
  classes_.push_back(SizeClass{size, guard, {}, 0, nullptr, 0, 0});
  return last_class_ = static_cast<std::uint16_t>(classes_.size() - 1);
}

Stack StackPool::acquire_slow(const StackOptions& options) {
  const std::size_t size = round_up(std::max<std::size_t>(options.size, 1), page_size());
  const std::uint16_t index = size_class(size, want_guard(options));
  SizeClass& sc = classes_[index];
  Stack stack;
  if (!sc.free.empty()) {
    stack = sc.free.back();
    sc.free.pop_back();
    sc.cold = std::min(sc.cold, sc.free.size());
  } else {
    if (sc.carve_left == 0) map_slab(sc);
    const std::size_t slot = size + (sc.guard ? page_size() : 0);
    stack.top = sc.carve_next + size;
    stack.size = size;
    stack.slab = sc.carve_slab;
    stack.size_class = index;
    // Guards go in as stacks are first handed out (0.8 us each here), not
    // for a whole slab at once: a slab's unused stacks cost nothing.
    stack.guarded = sc.guard && install_guard(sc.carve_next - page_size());
    if (sc.guard && !stack.guarded) ++unguarded_;
    if (running_on_valgrind()) {  // so memcheck follows switches onto this stack
      slabs_[stack.slab].valgrind_ids.push_back(show_stack_to_valgrind(stack.bottom(), stack.top));
    }
    sc.carve_next += slot;
    --sc.carve_left;
  }
  ++slabs_[stack.slab].outstanding;
  ++outstanding_;
  return stack;
}

void StackPool::map_slab(SizeClass& sc) {
  const std::size_t guard_bytes = sc.guard ? page_size() : 0;
  const std::size_t slot = sc.size + guard_bytes;
  const std::size_t count = std::max<std::size_t>(1, kSlabBytes / slot);
  const std::size_t bytes = slot * count;
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (base == MAP_FAILED) {
    const int err = errno;  // before the message is built
    throw std::system_error(
        err, std::generic_category(),
        "fiberloop: mmap of " + std::to_string(bytes >> 10) + " KiB for fiber stacks of " +
            std::to_string(sc.size >> 10) +
            " KiB each failed; use a smaller StackOptions::size or fewer fibers");
  }
  char* first = static_cast<char*>(base);
  std::uint32_t index = 0;
  while (index < slabs_.size() && slabs_[index].base != nullptr) ++index;
  if (index == slabs_.size()) slabs_.push_back({});
  slabs_[index] = Slab{first, bytes, 0, slot, sc.guard, {}};
  sc.carve_next = first + guard_bytes;  // each slot: [guard][stack]
  sc.carve_left = count;
  sc.carve_slab = index;
}

// How many more mprotect guards the process can afford: each splits its
// mapping, adding two to the count that vm.max_map_count caps. A margin stays
// free for everything else (malloc maps large blocks, threads map stacks).
std::size_t mprotect_guard_budget() noexcept {
  long max_maps = 65530;
  if (std::FILE* f = std::fopen("/proc/sys/vm/max_map_count", "re")) {
    if (std::fscanf(f, "%ld", &max_maps) != 1) max_maps = 65530;
    std::fclose(f);
  }
  long in_use = 0;
  if (std::FILE* f = std::fopen("/proc/self/maps", "re")) {
    for (int c; (c = std::fgetc(f)) != EOF;) in_use += c == '\n';
    std::fclose(f);
  }
  const long margin = std::max(1024L, max_maps / 8);
  const long spare = max_maps - in_use - margin;
  return spare > 0 ? static_cast<std::size_t>(spare / 2) : 0;
}

bool StackPool::install_guard(char* page) noexcept {
  if (warned_budget_) return false;
  int rc = -1;
  if (method_ == GuardMethod::kGuardInstall) {
    rc = ::madvise(page, page_size(), kMadvGuardInstall);
  } else {
    if (!mprotect_budget_) mprotect_budget_ = mprotect_guard_budget();
    if (*mprotect_budget_ > 0 && ::mprotect(page, page_size(), PROT_NONE) == 0) {
      --*mprotect_budget_;
      rc = 0;
    }
  }
  if (rc == 0) return true;
  warned_budget_ = true;
  std::fprintf(stderr,
               "fiberloop: out of memory mappings for guard pages (vm.max_map_count); new fiber "
               "stacks have no guard page, so a stack overflow may corrupt memory silently. "
               "Raise vm.max_map_count or use Linux >= 6.13 (MADV_GUARD_INSTALL).\n");
  return false;
}

std::size_t StackPool::total_carved() const noexcept {
  std::size_t pooled = 0;
  for (const SizeClass& sc : classes_) pooled += sc.free.size();
  return outstanding_ + pooled;
}

void StackPool::trim(std::size_t keep) noexcept {
  released_since_trim_ = 0;
  for (SizeClass& sc : classes_) {
    unmap_idle_slabs(sc, keep);
    if (sc.free.size() <= keep + sc.cold) continue;
    // free[cold, size - keep) still hold pages: give them back, coalescing
    // stacks that sit next to each other (guard pages between them included).
    std::vector<Stack> warm(sc.free.begin() + static_cast<std::ptrdiff_t>(sc.cold),
                            sc.free.end() - static_cast<std::ptrdiff_t>(keep));
    std::sort(warm.begin(), warm.end(),
              [](const Stack& a, const Stack& b) { return a.top < b.top; });
    const std::size_t guard_bytes = sc.guard ? page_size() : 0;
    std::size_t i = 0;
    while (i < warm.size()) {
      char* begin = warm[i].bottom();
      char* end = warm[i].top;
      while (++i < warm.size() && warm[i].bottom() - guard_bytes == end) end = warm[i].top;
      ::madvise(begin, static_cast<std::size_t>(end - begin), MADV_DONTNEED);
    }
    sc.cold = sc.free.size() - keep;
  }
}

void StackPool::unmap_idle_slabs(SizeClass& sc, std::size_t keep) noexcept {
  // A slab can go when none of its stacks is out and it holds none of the
  // `keep` stacks released last.
  if (sc.free.size() <= keep) return;
  const std::size_t kept_from = sc.free.size() - keep;
  std::vector<bool> idle(slabs_.size(), false);
  bool any = false;
  for (std::size_t i = 0; i < kept_from; ++i) {
    const std::uint32_t slab = sc.free[i].slab;
    if (slabs_[slab].outstanding == 0) idle[slab] = any = true;
  }
  for (std::size_t i = kept_from; i < sc.free.size(); ++i) idle[sc.free[i].slab] = false;
  if (!any) return;
  std::size_t kept = 0, kept_cold = 0;
  for (std::size_t i = 0; i < sc.free.size(); ++i) {
    if (idle[sc.free[i].slab]) continue;
    if (i < sc.cold) ++kept_cold;
    sc.free[kept++] = sc.free[i];
  }
  sc.free.resize(kept);
  sc.cold = kept_cold;
  for (std::size_t i = 0; i < slabs_.size(); ++i) {
    if (!idle[i]) continue;
    unmap(slabs_[i]);
    if (sc.carve_slab == i) sc.carve_left = 0;
  }
}

std::size_t StackPool::high_water(const Stack& stack) noexcept {
  if (!stack) return 0;
  const std::size_t page = page_size();
  const std::size_t pages = stack.size / page;
  std::vector<unsigned char> resident(pages);
  if (::mincore(stack.bottom(), stack.size, resident.data()) != 0) return 0;
  std::size_t lowest = pages;  // the lowest resident page, counted from the bottom
  for (std::size_t i = 0; i < pages; ++i) {
    if (resident[i] & 1) {
      lowest = i;
      break;
    }
  }
  return (pages - lowest) * page;
}

StackPoolStats StackPool::stats() const noexcept {
  StackPoolStats s;
  s.outstanding = outstanding_;
  for (const SizeClass& sc : classes_) s.pooled += sc.free.size();
  for (const Slab& slab : slabs_) {
    if (slab.base == nullptr) continue;
    s.mapped_bytes += slab.bytes;
    ++s.slabs;
  }
  s.unguarded = unguarded_;
  return s;
}

}  // namespace fiberloop::internal
