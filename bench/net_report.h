// The network part of //bench:report: fiberloop's example servers against
// the plain epoll server, under the same load generator, alternating.
#pragma once

namespace fiberloop::bench {

// Runs every workload and prints a table; `argv0` locates the servers.
// Returns false if a server could not be started.
bool run_network_report(const char* argv0, double seconds_per_run, int rounds);

}  // namespace fiberloop::bench
