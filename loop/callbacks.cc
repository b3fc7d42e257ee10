#include "loop/internal/callbacks.h"

#include <utility>

#include "loop/internal/scheduler.h"
#include "loop/internal/timer_heap.h"

namespace fiberloop::internal {

Callback& CallbackTable::allocate(std::function<void()> fn) {
  if (free_head_ == kNone) {
    slots_.emplace_back();
    Callback& c = slots_.back();
    c.table = this;
    c.index = static_cast<std::uint32_t>(slots_.size() - 1);
    c.next_free = kNone;
    free_head_ = c.index;
  }
  Callback& c = slots_[free_head_];
  free_head_ = c.next_free;
  c.fn = std::move(fn);
  return c;
}

void CallbackTable::release(Callback& c) noexcept {
  c.fn = nullptr;
  c.state = Callback::State::kFree;
  ++c.generation;
  c.next_free = free_head_;
  free_head_ = c.index;
}

Callbacks::Callbacks(Scheduler& scheduler, TimerHeap& timers)
    : scheduler_(scheduler), timers_(timers), table_(std::make_shared<CallbackTable>(this)) {}

Callbacks::~Callbacks() { table_->owner = nullptr; }  // handles that outlive the loop see it gone

TimerHandle Callbacks::call_soon(std::function<void()> fn) {
  scheduler_.check_thread("Loop::call_soon");
  if (scheduler_.closing()) return {};  // dropped: `fn` is destroyed on return
  Callback& c = table_->allocate(std::move(fn));
  c.state = Callback::State::kSoon;
  due_.push_back(c.index);
  return TimerHandle(table_, c.index, c.generation);
}

TimerHandle Callbacks::call_at(TimePoint when, std::function<void()> fn) {
  scheduler_.check_thread("Loop::call_at");
  if (scheduler_.closing()) return {};
  Callback& c = table_->allocate(std::move(fn));
  c.state = Callback::State::kTimer;
  c.fire = [](TimerNode* node) {
    auto& cb = *static_cast<Callback*>(node);
    cb.state = Callback::State::kSoon;
    cb.table->owner->due_.push_back(cb.index);
  };
  timers_.push(c, when);
  return TimerHandle(table_, c.index, c.generation);
}

void Callbacks::call_soon_posted(std::function<void()>& posted) {
  Callback& c = table_->allocate(std::move(posted));
  c.state = Callback::State::kSoon;
  due_.push_back(c.index);
}

void Callbacks::cancel(std::uint32_t slot, std::uint32_t generation) {
  scheduler_.check_thread("TimerHandle::cancel");
  if (slot >= table_->size()) return;
  Callback& c = (*table_)[slot];
  if (c.generation != generation) return;  // ran or was cancelled already
  if (c.state == Callback::State::kTimer) {
    timers_.remove(c);
    table_->release(c);
  } else if (c.state == Callback::State::kSoon) {
    c.state = Callback::State::kCancelled;  // due_ still names it; run_due frees it
    c.fn = nullptr;
  }
}

bool Callbacks::active(std::uint32_t slot, std::uint32_t generation) const noexcept {
  if (slot >= table_->size()) return false;
  const Callback& c = (*table_)[slot];
  return c.generation == generation &&
         (c.state == Callback::State::kSoon || c.state == Callback::State::kTimer);
}

void Callbacks::run_due() {
  if (due_.empty()) return;
  this_pass_.swap(due_);  // callbacks queued while these run wait for the next pass
  for (std::uint32_t index : this_pass_) {
    Callback& c = (*table_)[index];
    if (c.state != Callback::State::kSoon) {
      table_->release(c);  // cancelled
      continue;
    }
    std::function<void()> fn = std::move(c.fn);
    table_->release(c);  // its handle is no longer active while it runs
    ++run_count_;
    in_callback_.store(true, std::memory_order_relaxed);
    try {
      fn();
    } catch (...) {
      scheduler_.report(std::current_exception(), FiberInfo{0, "loop callback", {}});
    }
    in_callback_.store(false, std::memory_order_relaxed);
  }
  this_pass_.clear();
}

void Callbacks::discard() noexcept {
  for (std::uint32_t i = 0; i < table_->size(); ++i) {
    Callback& c = (*table_)[i];
    if (c.state == Callback::State::kTimer) timers_.remove(c);
    if (c.state != Callback::State::kFree) table_->release(c);
  }
  due_.clear();
}

bool Callbacks::in_callback() const noexcept {
  return in_callback_.load(std::memory_order_relaxed);
}

}  // namespace fiberloop::internal

namespace fiberloop {

void TimerHandle::cancel() {
  if (table_ && table_->owner != nullptr) table_->owner->cancel(slot_, generation_);
}

bool TimerHandle::active() const noexcept {
  return table_ && table_->owner != nullptr && table_->owner->active(slot_, generation_);
}

}  // namespace fiberloop
