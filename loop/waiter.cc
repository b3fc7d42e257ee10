#include "loop/internal/waiter.h"

#include "fiber/internal/check.h"
#include "loop/internal/diagnostics.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace fiberloop::internal {

namespace {

thread_local const char tls_thread_identity = 0;

}  // namespace

bool block_thread(std::atomic<std::uint32_t>& word, std::uint32_t until, TimePoint deadline) {
  for (;;) {
    const std::uint32_t now = word.load(std::memory_order_acquire);
    if (now >= until) return true;
    timespec timeout{};
    timespec* timeout_ptr = nullptr;
    if (deadline != kNever) {
      const Duration left = time_until(deadline, Clock::now());
      if (left <= Duration::zero()) return word.load(std::memory_order_acquire) >= until;
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      timeout.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      timeout.tv_nsec = static_cast<long>(ns % 1'000'000'000);
      timeout_ptr = &timeout;
    }
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, now,
              timeout_ptr, nullptr, 0);
  }
}

void wake_thread(std::atomic<std::uint32_t>& word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr,
            nullptr, 0);
}

const void* thread_identity() noexcept { return &tls_thread_identity; }

void Waiter::prepare_thread(const Scheduler* scheduler, const char* what) {
  if (scheduler != nullptr) {
    throw std::logic_error(std::string(what) +
                           " must wait, but was called on a loop's thread outside any fiber (a "
                           "callback, or before run()): it would block the loop; call it from "
                           "a fiber");
  }
  who = &tls_thread_identity;
}

void Waiter::notify_elsewhere() noexcept { mark().run(); }

void Wake::wake_word() const noexcept {
  word->store(Waiter::kWoken, std::memory_order_release);
  wake_thread(*word);  // the word may be gone by now: a futex wake only names it
}

namespace {

struct LoopCall : RemoteItem {
  void (*fn)(void*) noexcept = nullptr;
  void* arg = nullptr;
  Waiter caller;
};

void run_loop_call(RemoteItem* item, bool /*drop: run all the same*/) {
  auto& call = *static_cast<LoopCall*>(item);
  call.fn(call.arg);
  call.caller.notify();  // the last touch of `call`
}

// Posts a call of fn(arg) with `post` (which may refuse it), and waits
// for it as call_on_loop() says. Returns: whether `post` took it.
template <class Post>
bool call_through(Post post, void (*fn)(void*) noexcept, void* arg) {
  Scheduler* const here = Scheduler::current();
  LoopCall call;
  call.handle = &run_loop_call;
  call.fn = fn;
  call.arg = arg;
  FiberRecord* const self = here != nullptr ? here->running() : nullptr;
  if (self != nullptr) {
    call.caller.fiber = self;
    call.caller.park = self->park_seq;
  }
  if (!post(call)) return false;
  if (self != nullptr) {
    here->begin_remote_wait();
    // Parks at least once even if the answer is in already: the wake-up that
    // comes with it names this park (Waiter::park), and must not find the
    // fiber in a later one.
    ++self->outer_unwinding;  // holds interrupts off (Scheduler::may_interrupt)
    do {
      (void)here->park_uninterruptible(WaitKind::kAnswer);
    } while (!call.caller.was_notified());
    --self->outer_unwinding;
    here->end_remote_wait();
  } else if (here != nullptr) {
    using namespace std::chrono_literals;
    while (!block_thread(call.caller.state, Waiter::kWoken, Clock::now() + 50us)) {
      here->serve_remote();
    }
  } else {
    (void)block_thread(call.caller.state, Waiter::kWoken, kNever);
  }
  return true;
}

}  // namespace

void call_on_loop(Scheduler& target, void (*fn)(void*) noexcept, void* arg) {
  (void)call_through(
      [&](RemoteItem& item) {
        target.post(item);
        return true;
      },
      fn, arg);
}

namespace {

// Posts with post_if_live() through `ask(post)`, which waits for the answer
// (it returns whether `post` took the question). Returns: whether it was
// answered. Refused by a closing loop, returns once that loop has run what
// it took before (a drain of its queue, no wait on anything else): the
// caller acts only after that.
template <class Ask>
bool ask_if_live(Scheduler* target, std::uint64_t serial, Ask ask) {
  PostOutcome outcome = PostOutcome::kGone;
  if (ask([&](RemoteItem& item) {
        outcome = post_if_live(target, serial, item);
        return outcome == PostOutcome::kPosted;
      })) {
    return true;
  }
  while (outcome == PostOutcome::kClosing && refusing_posts(target, serial)) {
    std::this_thread::yield();
  }
  return false;
}

// A question a fiber may withdraw: on the heap, as the fiber may leave
// before the loop comes to it. `lock` orders the asker's withdrawal, and
// its re-aiming of the answer's wake-up at its next park, against the loop
// taking the question and answering it.
struct Question : RemoteItem {
  void (*fn)(void*) noexcept = nullptr;
  void* arg = nullptr;
  Waiter caller;
  SpinLock lock;
  bool taken = false;      // the loop runs fn (written by the loop, under lock)
  bool withdrawn = false;  // the asker has left: the loop frees it (under lock)
};

void answer_question(RemoteItem* item, bool /*drop: answered all the same*/) {
  auto* question = static_cast<Question*>(item);
  {
    std::lock_guard guard(question->lock);
    question->taken = !question->withdrawn;
  }
  if (!question->taken) {
    delete question;
    return;
  }
  question->fn(question->arg);
  // Marked and woken under the lock: an asker that a timeout or an
  // interrupt has made ready sees the mark only under it, and may leave,
  // free the question, and end with its loop right after; the wake-up
  // (a lock-free push to that loop) is done by then.
  std::lock_guard guard(question->lock);
  question->caller.mark().run();
}

// The fiber `self` of `here` asks with `post` (which may refuse it), and
// waits for the answer as ask_loop_if_live() says. Returns: whether `post`
// took it; `timed_out` says whether `deadline` passed before the loop took
// it (then withdrawn).
template <class Post>
bool ask_withdrawably(Scheduler& here, FiberRecord& self, Post post, void (*fn)(void*) noexcept,
                      void* arg, TimePoint deadline, bool& timed_out) {
  here.deliver_interrupt(self);  // one pending already: thrown before asking
  auto* question = new Question;
  question->handle = &answer_question;
  question->fn = fn;
  question->arg = arg;
  question->caller.fiber = &self;
  question->caller.park = self.park_seq;
  if (!post(*question)) {
    delete question;
    return false;
  }
  here.begin_remote_wait();
  bool interrupted = false;
  bool may_leave = true;
  // Parks at least once even if the answer is in already: its wake-up names
  // this park (Waiter::park), and must not end a later one.
  for (;;) {
    bool due = false;
    if (may_leave) {
      due = here.park_waiter(deadline, WaitKind::kAnswer) == Scheduler::ParkEnd::kTimedOut;
    } else {
      (void)here.park_uninterruptible(WaitKind::kAnswer);
    }
    std::lock_guard guard(question->lock);
    if (question->caller.was_notified()) break;
    if (may_leave) {
      interrupted = Scheduler::interrupt_due(self);
      timed_out = !interrupted && (due || (deadline != kNever && Clock::now() >= deadline));
      if (interrupted || timed_out) {
        if (!question->taken) {
          question->withdrawn = true;
          break;
        }
        // Taken: fn is under way there, and the answer near. An interrupt
        // waits for the next suspension point; the operation goes on.
        interrupted = timed_out = false;
        may_leave = false;
        ++self.outer_unwinding;  // holds interrupts off (Scheduler::may_interrupt)
      }
    }
    question->caller.park = self.park_seq;  // the next park: the wake-up names it
  }
  if (!may_leave) --self.outer_unwinding;
  here.end_remote_wait();
  if (interrupted) {
    here.deliver_interrupt(self);
    FIBERLOOP_CHECK(false,
                    "ask_loop_if_live: a question was withdrawn for an interrupt that was "
                    "not delivered");
  }
  if (!timed_out) delete question;  // (withdrawn: the loop frees it)
  return true;
}

// A plain thread asks with `post`, and blocks for the answer until
// `deadline`: then it withdraws the question unless the loop has taken it
// (`timed_out`), as ask_withdrawably() does for a fiber. Returns: whether
// `post` took it.
template <class Post>
bool ask_from_thread(Post post, void (*fn)(void*) noexcept, void* arg, TimePoint deadline,
                     bool& timed_out) {
  auto* question = new Question;
  question->handle = &answer_question;
  question->fn = fn;
  question->arg = arg;
  if (!post(*question)) {
    delete question;
    return false;
  }
  TimePoint until = deadline;
  for (;;) {
    (void)block_thread(question->caller.state, Waiter::kWoken, until);
    std::lock_guard guard(question->lock);
    if (question->caller.state.load(std::memory_order_acquire) == Waiter::kWoken) break;
    if (!question->taken) {
      question->withdrawn = true;  // the loop frees it
      timed_out = true;
      return true;
    }
    until = kNever;  // taken: the answer is under way
  }
  delete question;
  return true;
}

}  // namespace

bool call_on_loop_if_live(Scheduler* target, std::uint64_t serial, void (*fn)(void*) noexcept,
                          void* arg) {
  return ask_if_live(target, serial, [&](auto post) { return call_through(post, fn, arg); });
}

Asked ask_loop_if_live(Scheduler* target, std::uint64_t serial, void (*fn)(void*) noexcept,
                       void* arg, TimePoint deadline) {
  Scheduler* const here = Scheduler::current();
  FiberRecord* const self = here != nullptr ? here->running() : nullptr;
  bool timed_out = false;
  bool answered = false;
  if (self != nullptr) {
    answered = ask_if_live(target, serial, [&](auto post) {
      return ask_withdrawably(*here, *self, post, fn, arg, deadline, timed_out);
    });
  } else if (here == nullptr && deadline != kNever) {
    answered = ask_if_live(target, serial, [&](auto post) {
      return ask_from_thread(post, fn, arg, deadline, timed_out);
    });
  } else {
    answered = call_on_loop_if_live(target, serial, fn, arg);
  }
  if (timed_out) return Asked::kTimedOut;
  return answered ? Asked::kAnswered : Asked::kGone;
}

}  // namespace fiberloop::internal
