// The loop's record of one fiber. Pooled: spawning takes a record from the
// loop's free list and finishing returns it, so spawn allocates nothing in
// steady state. Task<T> and the running fiber share it by reference count.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>

#include "fiber/internal/check.h"
#include "fiber/internal/context.h"
#include "loop/internal/intrusive_list.h"
#include "loop/options.h"

// FIBERLOOP_CHECK about a fiber: the report names `fiber` and its state.
#define FIBERLOOP_CHECK_FIBER(fiber, condition, message)                                         \
  do {                                                                                           \
    if (!(condition)) [[unlikely]]                                                               \
      ::fiberloop::internal::fiber_check_failed(fiber, #condition, message, __FILE__, __LINE__); \
  } while (false)

namespace fiberloop::internal {

class Scheduler;
class RecordPool;
class TimeoutScope;

// What a parked fiber waits on, for Loop::dump(). Set by each park site.
// kWaitKindNames (loop/format.cc) says each in words, for dump() and for
// tools/gdb/fiberloop.py, which reads that array from the process.
enum class WaitKind : std::uint8_t {
  kNothing,
  kJoin,
  kSleep,
  kRead,
  kWrite,
  kEvent,
  kMutex,
  kConditionVariable,
  kSemaphore,
  kWaitGroup,
  kChannel,
  kFuture,
  kBlockingJob,
  kFileIo,
  kAnswer,  // another loop's answer: a stream's hand-over, sharing a primitive
  kTurn,    // another fiber's turn on the fd (two acceptors of one listener)
  kOther,
};
extern const char* const kWaitKindNames[];

// A join's wait detail (FiberRecord::wait_detail, for Loop::dump() and the
// gdb script): the joined fiber's id in the low 48 bits, and in the top 16
// `loop_tag`, which loop that fiber belongs to: 0 the joiner's own, index
// + 1 that loop of the joiner's group, kJoinedElsewhere a loop outside it.
// (Ids are per loop, so the loop is what tells two fibers 3 apart. An id
// past 2^48 shows truncated.)
inline constexpr int kJoinedLoopShift = 48;
inline constexpr std::uint64_t kJoinedElsewhere = 0xFFFF;
constexpr std::int64_t join_detail(std::uint64_t id, std::uint64_t loop_tag) noexcept {
  const std::uint64_t tag = loop_tag < kJoinedElsewhere ? loop_tag : kJoinedElsewhere;
  return static_cast<std::int64_t>((tag << kJoinedLoopShift) |
                                   (id & ((std::uint64_t{1} << kJoinedLoopShift) - 1)));
}
// The two halves of a join_detail().
constexpr std::uint64_t joined_fiber_id(std::int64_t detail) noexcept {
  return static_cast<std::uint64_t>(detail) & ((std::uint64_t{1} << kJoinedLoopShift) - 1);
}
constexpr std::uint64_t joined_loop_tag(std::int64_t detail) noexcept {
  return static_cast<std::uint64_t>(detail) >> kJoinedLoopShift;
}

enum class FiberState : std::uint8_t {
  kReady,      // in the ready queue (also: spawned, not yet started, no stack)
  kRunning,    // the one fiber on the CPU
  kParked,     // waiting to be woken; in at most one wait list
  kFinished,   // body returned or threw; stack released
  kAbandoned,  // would not end when its loop shut down: stack leaked, never resumed
};
// "ready", "running", ... by FiberState, for dump() and the gdb script.
extern const char* const kFiberStateNames[];

// A fiber's return value: inline when small, on the heap otherwise.
class ResultSlot {
 public:
  static constexpr std::size_t kInlineBytes = 32;  // a std::string fits

  template <class T, class... Args>
  void emplace(Args&&... args) {
    if constexpr (fits_inline<T>()) {
      ::new (static_cast<void*>(buffer_)) T(std::forward<Args>(args)...);
      destroy_ = [](ResultSlot& s) { s.get<T>()->~T(); };
    } else {
      ::new (static_cast<void*>(buffer_)) T*(new T(std::forward<Args>(args)...));
      destroy_ = [](ResultSlot& s) { delete *reinterpret_cast<T**>(s.buffer_); };
    }
  }

  // Moves the value out and empties the slot. Requires: holds a T.
  template <class T>
  T take() {
    FIBERLOOP_CHECK(destroy_ != nullptr, "ResultSlot::take of an empty slot");
    T value = std::move(*get<T>());
    reset();
    return value;
  }

  void reset() noexcept {
    if (destroy_ != nullptr) destroy_(*this);
    destroy_ = nullptr;
  }

 private:
  template <class T>
  static constexpr bool fits_inline() {
    return sizeof(T) <= kInlineBytes && alignof(T) <= alignof(void*);
  }
  template <class T>
  T* get() noexcept {
    if constexpr (fits_inline<T>()) {
      return std::launder(reinterpret_cast<T*>(buffer_));
    } else {
      return *reinterpret_cast<T**>(buffer_);
    }
  }

  alignas(void*) unsigned char buffer_[kInlineBytes];  // 8-aligned: keeps the record small
  void (*destroy_)(ResultSlot&) = nullptr;
};

struct AllFibersTag {};  // hook of Scheduler::all_
struct FiberRecord;

// A fiber waiting for another to finish (join, wait_any, gather), on the
// waiter's stack. For wait_any, one per task, all naming one `winner`.
// A join from another loop or thread sets `on_done` instead (it runs on
// the finishing fiber's loop: loop/remote_join.cc).
struct DoneWaiter : ListHook<> {
  static constexpr std::size_t kNone = ~std::size_t{0};
  FiberRecord* fiber = nullptr;
  std::size_t index = 0;
  std::size_t* winner = nullptr;  // set to `index` by the first task to finish
  void (*on_done)(DoneWaiter& self) noexcept = nullptr;
};

// Cache-line aligned, and everything a switch touches (the bases, context,
// state, flags) sits in the first line: with a million ready fibers each
// switch misses the cache, so lines per switch is what a yield costs.
struct alignas(64) FiberRecord : ContextEntry, ListHook<AllFibersTag> {
  // Bits of `pending`. A cancel is delivered once; a timeout at every
  // suspension point while its expired with_timeout() scope is open.
  static constexpr std::uint8_t kCancel = 1;
  static constexpr std::uint8_t kTimeout = 2;

  ContextHandle context = nullptr;  // saved while not running
  ExceptionState exceptions;        // the C++ runtime's, saved while not running
  FiberState state = FiberState::kReady;
  bool notified = false;     // woken by a notifier (wake) since it last parked
  std::uint8_t pending = 0;  // interrupts to deliver at a suspension point
  bool detached = false;     // no Task will observe the outcome
  // -- end of the first cache line --
  bool joined = false;                       // join() has returned the outcome
  WaitKind waiting_on = WaitKind::kNothing;  // while parked
  std::uint16_t outer_unwinding = 0;         // exceptions unwinding the consumers of a running body
  std::uint32_t refs = 0;                    // the running fiber + the Task handle
  std::uint32_t callable_align = 0;          // of a heap callable, to free it
  Scheduler* scheduler = nullptr;            // its loop's; null once the loop is destroyed
  RecordPool* pool = nullptr;

  FiberId id = 0;
  TimeoutScope* timeouts = nullptr;  // innermost with_timeout() scope still open
  // Taken when the fiber first runs, not at spawn: a burst of spawns touches
  // no stack memory. Until then (`context` null) it only says what to ask
  // for: its size and whether it wants a guard page.
  Stack stack;
  // Runs the callable (run == true) or only destroys it, filling result/error.
  void (*body)(FiberRecord*, bool run) = nullptr;
  // In callable_buffer when it fits, else on the heap.
  void* callable = nullptr;
  std::uint64_t finish_seq = 0;  // order of finishing, from 1; 0 while running
  // Room for a connection handler's closure without a heap allocation: a
  // TcpStream (80 bytes) and a few references.
  static constexpr std::size_t kInlineCallable = 128;
  alignas(16) unsigned char callable_buffer[kInlineCallable];
  IntrusiveList<DoneWaiter> done_waiters;  // fibers waiting for this one to finish
  std::atomic<bool> done_flag{false};      // finished, for other threads (Task::done)
  std::exception_ptr error;
  ResultSlot result;
  std::string name;
  std::source_location spawned_at;
  FiberRecord* next_free = nullptr;  // the pool's free list
  // For Loop::dump(), set when the fiber parks: when (by the loop's coarse
  // clock) and exactly what for: the fd (kRead, kWrite, kTurn), the joined fiber's
  // id (kJoin), the deadline in Clock ticks (kSleep).
  TimePoint parked_at;
  std::int64_t wait_detail = 0;
  // For kRead, kWrite and kTurn, the call that waits on the fd ("accept",
  // "wait_signal", "TLS read"): a string literal, set by io/'s park sites.
  const char* wait_call = nullptr;
  std::uint32_t park_seq = 0;   // counts the fiber's parks: what a remote wake names
  bool woken_remotely = false;  // its last park ended by a remote wake
  WakeToken wake_token;         // another thread's wake (Scheduler::remote_wake)
#if FIBERLOOP_SANITIZE_SWITCH
  // The context the fiber suspended on, as the sanitizers know it: its own,
  // or a generator body's that parked it. ASan and TSan builds only.
  StackRange suspended_on;
#endif

  FiberRecord() = default;
  FiberRecord(const FiberRecord&) = delete;
  FiberRecord& operator=(const FiberRecord&) = delete;

  bool finished() const noexcept { return state == FiberState::kFinished; }

  // Frees a heap callable's memory (destroyed already, or never made).
  void free_callable() noexcept {
    if (callable != callable_buffer && callable != nullptr) {
      ::operator delete (callable, std::align_val_t{callable_align});
    }
    callable = nullptr;
  }
};

// The loop `f` belongs to, null once that loop is gone, read from any thread:
// its ~Scheduler stores null (release) after it is done with the record.
inline std::atomic_ref<Scheduler*> loop_of(FiberRecord& f) noexcept {
  return std::atomic_ref<Scheduler*>(f.scheduler);
}

// Prints the failed check about `f` (its id, name and state) and aborts.
[[noreturn]] void fiber_check_failed(const FiberRecord& f, const char* condition,
                                     const char* message, const char* file, int line) noexcept;

}  // namespace fiberloop::internal
