// The background reaper: waits for children that nobody will wait for any
// more (a Process destroyed while its child runs), so that none is left a
// zombie. One thread for the process, started on first use, which polls the
// children's pidfds; a fork()'s child starts its own.
#pragma once

namespace fiberloop::internal {

// Takes `pidfd` (child `pid`'s, not yet waited for): reaps the child when it
// exits, then closes the pidfd. Any thread; never blocks. If no thread can
// be started for it, says so on stderr (naming `pid`) and closes the pidfd.
void reap_in_background(int pidfd, int pid) noexcept;

// Children handed over and not yet reaped (for tests).
int children_awaiting_reaper() noexcept;

}  // namespace fiberloop::internal
