// The network part of //bench:report: fiberloop's example servers against
// the plain epoll server, under the same load generator, alternating.
#pragma once

#include <string>
#include <vector>

namespace fiberloop::bench {

// One server under one workload: the medians the table prints.
struct NetResult {
  std::string workload;  // workload_name(): "echo 64 B", "HTTP hello", ...
  int connections = 0;
  std::string server;  // "fiberloop", "plain epoll"
  double requests_per_cpu_second = 0;
};

// Runs every workload and prints a table; `argv0` locates the servers.
// Appends each row to `results`. Returns false if a server could not be
// started.
bool run_network_report(const char* argv0, double seconds_per_run, int rounds,
                        std::vector<NetResult>* results);

}  // namespace fiberloop::bench
