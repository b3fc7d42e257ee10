// A doubly linked intrusive list: items derive from ListHook<Tag>, so linking
// and unlinking allocate nothing, and an item can unlink itself without
// knowing its list (how a cancelled waiter leaves whatever it waits on). The
// tag lets one item sit in several lists at once, one per tag.
#pragma once

#include <cstddef>

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
  void push_back(T& item) noexcept {
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
  T& pop_front() noexcept {
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

}  // namespace fiberloop::internal
