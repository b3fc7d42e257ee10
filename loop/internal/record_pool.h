// Fiber records in chunks, recycled through a free list: spawning in steady
// state allocates nothing. A record can outlive its loop (a Task kept after
// the Loop is gone), so the loop orphans the pool and the last record
// released frees it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "loop/internal/fiber_record.h"
#include "loop/internal/spin_lock.h"

namespace fiberloop::internal {

// Handles a fiber's WakeToken on its loop's thread (scheduler.cc).
void handle_wake_token(RemoteItem* item, bool drop);

// A loop's records: taken and given back on its thread. A `shared` pool is
// the one fibers spawned from other threads take their record from: it
// takes its lock (never contended on the loop's own path, which does not
// use it).
class RecordPool {
 public:
  // `loop_serial`: the serial of the loop whose records these are, so that
  // another thread names that loop without reading it (a join's withdrawal
  // posts with post_if_live, which checks it).
  explicit RecordPool(std::uint64_t loop_serial, bool shared = false) noexcept
      : loop_serial_(loop_serial), shared_(shared) {}

  std::uint64_t loop_serial() const noexcept { return loop_serial_; }

  // A fresh record: every field at its default, refs == 0.
  FiberRecord* acquire() {
    Hold hold(*this);
    if (free_ == nullptr) grow();
    FiberRecord* r = free_;
    free_ = r->next_free;
    r->next_free = nullptr;
    ++live_;
    return r;
  }

  // Resets the record and takes it back; frees the pool if it was orphaned
  // and this was its last record.
  void release(FiberRecord* r) noexcept {
    r->result.reset();
    if (r->error) r->error = nullptr;  // skips an out-of-line call when empty
    r->name.clear();                   // keeps its capacity for the next fiber
    r->context = nullptr;
    r->exceptions = {};
    r->scheduler = nullptr;
    r->state = FiberState::kReady;
    r->notified = r->detached = r->joined = false;
    r->pending = 0;
    r->done_flag.store(false, std::memory_order_relaxed);
    r->timeouts = nullptr;
    r->finish_seq = 0;
#if FIBERLOOP_SANITIZE_SWITCH
    r->suspended_on = {};
#endif
    r->stack = Stack{};
    r->callable = nullptr;
    bool last;
    {
      Hold hold(*this);
      r->next_free = free_;
      free_ = r;
      last = --live_ == 0 && orphaned_;
    }
    if (last) delete this;
  }

  // The owning loop is going away: free now, or once the last record returns.
  void orphan() noexcept {
    bool last;
    {
      Hold hold(*this);
      orphaned_ = true;
      last = live_ == 0;
    }
    if (last) delete this;
  }

  std::size_t live() const noexcept { return live_; }

  // Calls fn(FiberRecord&) on every record in use (held by a fiber or a Task).
  template <class Fn>
  void for_each_live(Fn&& fn) {
    for (auto& chunk : chunks_) {
      for (std::size_t i = 0; i < kChunk; ++i) {
        if (chunk[i].refs != 0) fn(chunk[i]);
      }
    }
  }

 private:
  static constexpr std::size_t kChunk = 256;

  // The lock of a shared pool, for one step.
  struct Hold {
    explicit Hold(RecordPool& pool) noexcept : lock(pool.shared_ ? &pool.lock_ : nullptr) {
      if (lock != nullptr) lock->lock();
    }
    ~Hold() {
      if (lock != nullptr) lock->unlock();
    }
    SpinLock* lock;
  };

  void grow() {
    chunks_.push_back(std::make_unique<FiberRecord[]>(kChunk));
    FiberRecord* chunk = chunks_.back().get();
    for (std::size_t i = kChunk; i-- > 0;) {
      chunk[i].pool = this;
      chunk[i].wake_token.fiber = &chunk[i];
      chunk[i].wake_token.handle = &handle_wake_token;
      chunk[i].next_free = free_;
      free_ = &chunk[i];
    }
  }

  std::vector<std::unique_ptr<FiberRecord[]>> chunks_;
  const std::uint64_t loop_serial_;
  FiberRecord* free_ = nullptr;
  std::size_t live_ = 0;
  bool orphaned_ = false;
  const bool shared_;
  SpinLock lock_;
};

}  // namespace fiberloop::internal
