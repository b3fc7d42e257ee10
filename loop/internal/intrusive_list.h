// Intrusive containers: linking allocates nothing, as the links live in the
// items. IntrusiveList is a doubly linked list for one thread: items derive
// from ListHook<Tag>, and can unlink themselves without knowing their list
// (how a cancelled waiter leaves whatever it waits on); the tag lets one item
// sit in several lists at once. MpscQueue is a lock-free queue that any
// thread pushes onto and one thread pops from (a loop's cross-thread queue).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "fiber/internal/check.h"

namespace fiberloop::internal {

struct DefaultTag {};

template <class Tag = DefaultTag>
class ListHook {
 public:
  ListHook() noexcept = default;
  ListHook(const ListHook&) = delete;
  ListHook& operator=(const ListHook&) = delete;
  ~ListHook() { unlink(); }

  bool linked() const noexcept { return next_ != nullptr; }

  // Removes the item from its list; a no-op when not linked.
  void unlink() noexcept {
    if (next_ == nullptr) return;
    prev_->next_ = next_;
    next_->prev_ = prev_;
    next_ = prev_ = nullptr;
  }

 private:
  template <class T, class>
  friend class IntrusiveList;
  ListHook* next_ = nullptr;
  ListHook* prev_ = nullptr;
};

// FIFO list of T (which derives from ListHook<Tag>). Not copyable; unlinks
// its items when destroyed.
template <class T, class Tag = DefaultTag>
class IntrusiveList {
  using Hook = ListHook<Tag>;

 public:
  IntrusiveList() noexcept { head_.next_ = head_.prev_ = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;
  ~IntrusiveList() {
    while (!empty()) pop_front();
    head_.next_ = head_.prev_ = nullptr;
  }

  bool empty() const noexcept { return head_.next_ == &head_; }

  // Requires (checked): `item` is in no list of this tag.
  [[gnu::always_inline]] void push_back(T& item) noexcept {
    FIBERLOOP_CHECK(!static_cast<Hook&>(item).linked(),
                    "IntrusiveList::push_back of an item already in a list");
    Hook& h = item;
    h.prev_ = head_.prev_;
    h.next_ = &head_;
    head_.prev_->next_ = &h;
    head_.prev_ = &h;
  }

  // The first item. Requires (checked): !empty().
  T& front() noexcept {
    FIBERLOOP_CHECK(!empty(), "IntrusiveList::front on an empty list");
    return static_cast<T&>(*head_.next_);
  }

  // Unlinks and returns the first item. Requires (checked): !empty().
  [[gnu::always_inline]] T& pop_front() noexcept {
    T& item = front();
    static_cast<Hook&>(item).unlink();
    return item;
  }

  // Calls fn(const T&) on each item in order.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (const Hook* h = head_.next_; h != &head_; h = h->next_) fn(static_cast<const T&>(*h));
  }

  // Calls fn(T&) on each item in order; fn may unlink the item it is given.
  template <class Fn>
  void for_each(Fn&& fn) {
    for (Hook* h = head_.next_; h != &head_;) {
      Hook* next = h->next_;
      fn(static_cast<T&>(*h));
      h = next;
    }
  }

 private:
  Hook head_;
};

// An item of an MpscQueue.
struct MpscNode {
  std::atomic<MpscNode*> next{nullptr};
};

// Dmitry Vyukov's intrusive multi-producer single-consumer queue: a push is
// one exchange and one store, wait-free; a pop is the consumer's alone. A
// producer stopped between its two steps hides what it pushed (and what was
// pushed after) until it resumes: pop() returns null meanwhile, and the
// producer's wake-up, which comes after its push, brings the consumer back.
// An item of a loop's cross-thread queue: handle() runs it on the loop's
// thread, or, with `drop` (the loop is closing), only disposes of it.
struct RemoteItem : MpscNode {
  void (*handle)(RemoteItem* self, bool drop) = nullptr;
};

// How another thread wakes a parked fiber: pushed onto the fiber's loop's
// queue at most once at a time (a wake while it is queued only updates
// `park`), naming the park it wakes (FiberRecord::park_seq), so that a wake
// meant for a park the fiber has left is ignored.
struct WakeToken : RemoteItem {
  std::atomic<bool> queued{false};
  std::atomic<std::uint32_t> park{0};
  void* fiber = nullptr;  // the FiberRecord it belongs to
};

class MpscQueue {
 public:
  MpscQueue() noexcept : head_(&stub_), tail_(&stub_) {}
  MpscQueue(const MpscQueue&) = delete;
  MpscQueue& operator=(const MpscQueue&) = delete;

  // Any thread.
  void push(MpscNode* node) noexcept {
    node->next.store(nullptr, std::memory_order_relaxed);
    MpscNode* prev = head_.exchange(node, std::memory_order_acq_rel);
    prev->next.store(node, std::memory_order_release);
  }

  // The consumer only: the oldest item, or null if none is (fully) there.
  MpscNode* pop() noexcept {
    MpscNode* tail = tail_;
    MpscNode* next = tail->next.load(std::memory_order_acquire);
    if (tail == &stub_) {
      if (next == nullptr) return nullptr;
      tail_ = next;
      tail = next;
      next = next->next.load(std::memory_order_acquire);
    }
    if (next != nullptr) {
      tail_ = next;
      return tail;
    }
    if (tail != head_.load(std::memory_order_acquire)) return nullptr;  // a push under way
    push(&stub_);
    next = tail->next.load(std::memory_order_acquire);
    if (next == nullptr) return nullptr;
    tail_ = next;
    return tail;
  }

 private:
  std::atomic<MpscNode*> head_;  // the newest item (producers)
  MpscNode* tail_;               // the oldest (the consumer)
  MpscNode stub_;
};

}  // namespace fiberloop::internal
