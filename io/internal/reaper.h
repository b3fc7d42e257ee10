// The background reaper: waits for children that nobody will wait for any
// more (a Process destroyed while its child runs), so that none is left a
// zombie. One thread for the process, started on first use, which polls the
// children's pidfds.
#pragma once

namespace fiberloop::internal {

// Takes `pidfd` (a child's, not yet waited for): reaps the child when it
// exits, then closes the pidfd. Any thread; never blocks.
void reap_in_background(int pidfd) noexcept;

// Children handed over and not yet reaped (for tests).
int children_awaiting_reaper() noexcept;

}  // namespace fiberloop::internal
