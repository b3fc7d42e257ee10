// Threads fiberloop starts itself (run_blocking() workers, the stall
// watchdog): each blocks every signal but the synchronous faults, so that a
// process-directed signal meant for wait_signal() is never taken by one of
// them; and each is known by its kernel id, so that a loop can tell
// "waiting for another thread" from a deadlock (Go's rule: a deadlock is
// certain only when no thread but fiberloop's own exists).
#pragma once

#include <functional>
#include <string>
#include <thread>

namespace fiberloop::internal {

// Starts `body` on a new thread with every signal blocked except SIGSEGV,
// SIGBUS, SIGFPE, SIGILL, SIGTRAP and SIGSYS (faults are delivered to the
// thread that causes them and cannot be waited for). The thread counts as
// fiberloop's own while `body` runs.
// `role` names the thread in the error ("a run_blocking worker"); `name`
// is what `top -H`, `ps -L`, gdb's `info threads` and /proc show for it, at
// most 15 characters (the kernel's limit): fiberloop's start with "fl-".
// `runs_fibers`: the thread runs a LoopGroup's loop, whose fibers run the
// user's code (see other_threads_exist()).
// Throws: std::system_error if the thread cannot be started, naming `role`
//         and the usual causes.
std::thread start_own_thread(const std::string& role, const std::string& name,
                             std::function<void()> body, bool runs_fibers = false);

// Whether the process has a thread that is neither the calling one nor one
// of fiberloop's own (nor, in ThreadSanitizer builds, TSan's background
// thread): one that may still post work with call_soon_threadsafe(). With
// `loop_threads_count`, a LoopGroup's loop threads count as such threads:
// their fibers may wake a lone loop's (a lone loop asks so; the group's own
// deadlock rule does not). Lists /proc/self/task, so it is for the moment a
// loop would otherwise give up.
bool other_threads_exist(bool loop_threads_count = false) noexcept;

}  // namespace fiberloop::internal
