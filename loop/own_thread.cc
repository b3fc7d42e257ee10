#include "loop/internal/own_thread.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>
#include <system_error>
#include <utility>
#include <vector>

#include "fiber/internal/check.h"
#include "fiber/internal/context.h"  // FIBERLOOP_TSAN

namespace fiberloop::internal {
namespace {

// The kernel ids of the threads of this process, as /proc/self/task lists them.
std::vector<pid_t> list_threads() {
  std::vector<pid_t> tids;
  if (DIR* dir = ::opendir("/proc/self/task")) {
    while (const dirent* e = ::readdir(dir)) {
      if (e->d_name[0] != '.') tids.push_back(static_cast<pid_t>(std::atol(e->d_name)));
    }
    ::closedir(dir);
  }
  return tids;
}

struct Registry {
  std::mutex mutex;
  std::vector<pid_t> own;      // fiberloop's threads now running
  std::vector<pid_t> loops;    // those of them that run a LoopGroup's loop
  std::vector<pid_t> runtime;  // threads of the runtime itself (TSan's background thread)
};

void forget_threads_after_fork() noexcept;

// Never destroyed: threads may outlive static destructors.
Registry& registry() {
  static Registry* r = [] {
    ::pthread_atfork(nullptr, nullptr, &forget_threads_after_fork);
    return new Registry;
  }();
  return *r;
}

// Made as the library loads, before any thread of its own can exist: a fork()
// while one of them was still making it (its first use) would leave the
// child waiting for ever on the initialization's guard.
[[maybe_unused]] const bool registry_made = (registry(), true);

// In a fork()'s child only the forking thread runs: none of the parent's
// other threads is there, and one of them may have held the lock at the
// fork. The child's registry starts afresh, in place (nothing allocated).
void forget_threads_after_fork() noexcept {
  Registry& r = registry();
  new (&r.mutex) std::mutex;
  r.own.clear();
  r.loops.clear();
}

#if FIBERLOOP_TSAN
// ThreadSanitizer starts a background thread of its own at the first
// pthread_create of the process. Make that happen here, before main (no
// other thread exists yet), and remember it.
[[maybe_unused]] const bool tsan_thread_known = [] {
  const std::vector<pid_t> before = list_threads();
  std::thread([] {}).join();
  for (pid_t tid : list_threads()) {
    if (std::find(before.begin(), before.end(), tid) == before.end()) {
      registry().runtime.push_back(tid);
    }
  }
  return true;
}();
#endif

// Registers the calling thread as fiberloop's for its lifetime.
class OwnThread {
 public:
  explicit OwnThread(bool runs_fibers) : tid_(::gettid()) {
    std::lock_guard lock(registry().mutex);
    registry().own.push_back(tid_);
    if (runs_fibers) registry().loops.push_back(tid_);
  }
  ~OwnThread() {
    std::lock_guard lock(registry().mutex);
    for (std::vector<pid_t>* list : {&registry().own, &registry().loops}) {
      // (Absent in a fork()'s child, whose registry started afresh.)
      const auto it = std::find(list->begin(), list->end(), tid_);
      if (it != list->end()) list->erase(it);
    }
  }
  OwnThread(const OwnThread&) = delete;
  OwnThread& operator=(const OwnThread&) = delete;

 private:
  pid_t tid_;
};

}  // namespace

std::thread start_own_thread(const std::string& role, const std::string& name,
                             std::function<void()> body, bool runs_fibers) {
  FIBERLOOP_CHECK(name.size() <= 15, "start_own_thread: a thread name has at most 15 characters");
  sigset_t all, old;
  sigfillset(&all);
  for (int fault : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS}) sigdelset(&all, fault);
  // The new thread inherits the mask in force when it is created.
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  std::thread t;
  try {
    t = std::thread([body = std::move(body), runs_fibers] {
      OwnThread registered(runs_fibers);
      body();
    });
  } catch (const std::system_error& e) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw std::system_error(e.code(), "fiberloop: cannot start " + role +
                                          " (the limit on threads, ulimit -u, or memory?)");
  } catch (...) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::pthread_setname_np(t.native_handle(), name.c_str());  // named once this returns
  return t;
}

bool other_threads_exist(bool loop_threads_count) noexcept {
  try {
    const pid_t self = ::gettid();
    const std::vector<pid_t> tids = list_threads();
    std::lock_guard lock(registry().mutex);
    const auto& r = registry();
    for (pid_t tid : tids) {
      if (tid == self) continue;
      if (std::find(r.own.begin(), r.own.end(), tid) != r.own.end() &&
          !(loop_threads_count && std::find(r.loops.begin(), r.loops.end(), tid) != r.loops.end()))
        continue;
      if (std::find(r.runtime.begin(), r.runtime.end(), tid) != r.runtime.end()) continue;
      return true;
    }
    return false;
  } catch (...) {
    return true;  // cannot tell: waiting is the safe side
  }
}

}  // namespace fiberloop::internal
