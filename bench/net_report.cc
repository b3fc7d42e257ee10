// Each measurement: start a server, wait until it accepts, drive it from
// this process, read the server's CPU time from /proc, stop it. The servers
// take turns, and the tables show medians over the rounds: requests per
// second (bounded by the load generator's own core on a 2-core machine) and
// requests per second of server CPU (the fairer figure). The one-core table
// pins the server to CPU 0 and the load to CPU 1; the every-core table
// leaves both to the kernel, and compares 1 loop with 2. The TLS table runs
// fiberloop's TLS echo server against a plain OpenSSL + epoll server, one
// core each, with an ECDSA P-256 certificate made for the run.
#include "bench/net_report.h"

#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/loadgen.h"
#include "tests/tls_certs.h"

namespace fiberloop::bench {
namespace {

struct Server {
  const char* label;
  std::string path;
  std::vector<std::string> args;  // after the binary
  bool pinned = true;             // to CPU 0; else the whole mask
  const char* backend = "epoll";  // FIBERLOOP_BACKEND for fiberloop's servers
};

struct Sample {
  double rps = 0, rps_per_cpu = 0, p50 = 0, p99 = 0;
  // Per request, in us, where the server's CPU time went. Pinned, the
  // server is alone on CPU 0, and the split is CPU 0's (/proc/stat: user,
  // system, softirq and irq), where each tick counts once: the process's
  // own system time also holds the softirq work that ran in its context
  // (the loopback's receive path, after each send). Unpinned, the
  // process's user and system time, without a softirq figure.
  double user_us = 0, kernel_us = 0, softirq_us = 0;
};

std::string find_binary(const char* argv0, const std::string& rel) {
  // `bazel run` starts us in our runfiles tree; otherwise it sits beside us.
  if (::access(rel.c_str(), X_OK) == 0) return rel;
  const std::string beside = std::string(argv0) + ".runfiles/fiberloop/" + rel;
  if (::access(beside.c_str(), X_OK) == 0) return beside;
  return {};
}

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

void unpin() {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (long cpu = 0; cpu < ::sysconf(_SC_NPROCESSORS_ONLN); ++cpu) CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

// Whitespace-separated fields of one line.
std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> fields;
  std::string f;
  for (std::size_t i = 0; i <= line.size(); ++i) {
    if (i == line.size() || line[i] == ' ') {
      if (!f.empty()) fields.push_back(f);
      f.clear();
    } else {
      f += line[i];
    }
  }
  return fields;
}

double ticks_to_seconds(const std::string& ticks) {
  return std::stod(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// CPU time by kind, in seconds: a process's (no softirq figure), or one
// CPU's.
struct CpuTimes {
  double user = 0, kernel = 0, softirq = 0;
};

CpuTimes process_times(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  std::getline(in, s);
  const std::size_t close = s.rfind(')');
  if (close == std::string::npos) return {};
  // fields[0] is the state (field 3); utime and stime are fields 14 and 15.
  const std::vector<std::string> fields = fields_of(s.substr(close + 1));
  if (fields.size() < 13) return {};
  return {ticks_to_seconds(fields[11]), ticks_to_seconds(fields[12]), 0};
}

// CPU `cpu`'s time since boot from its "cpuN" line of /proc/stat: user and
// nice, system, and irq and softirq.
CpuTimes cpu_times(int cpu) {
  std::ifstream in("/proc/stat");
  const std::string name = "cpu" + std::to_string(cpu);
  for (std::string line; std::getline(in, line);) {
    const std::vector<std::string> f = fields_of(line);
    if (f.size() > 7 && f[0] == name) {
      return {ticks_to_seconds(f[1]) + ticks_to_seconds(f[2]), ticks_to_seconds(f[3]),
              ticks_to_seconds(f[6]) + ticks_to_seconds(f[7])};
    }
  }
  return {};
}

bool accepts(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

pid_t start(const Server& s, std::uint16_t port) {
  std::fflush(nullptr);  // or the child's freopen writes our buffered output again
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (s.pinned) {
      pin(0);
    } else {
      unpin();
    }
    std::vector<std::string> args{s.path, "--port", std::to_string(port)};
    args.insert(args.end(), s.args.begin(), s.args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::setenv("FIBERLOOP_BACKEND", s.backend, 1);
    if (!::freopen("/dev/null", "w", stdout) || !::freopen("/dev/null", "w", stderr)) ::_exit(126);
    ::execv(s.path.c_str(), argv.data());
    ::_exit(127);
  }
  for (int i = 0; i < 500 && !accepts(port); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return pid;
}

void stop(pid_t pid) {
  ::kill(pid, SIGTERM);
  int status;
  ::waitpid(pid, &status, 0);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct Case {
  Workload workload;
  int connections;
};

// The servers' binaries, and the certificate the TLS ones present.
struct Paths {
  std::string epoll, echo, http, tls_epoll, tls_echo;
  std::string cert, key;
  std::string uring;  // empty when built without liburing: no io_uring servers
};

// Runs every case against every server, alternating who goes first, and
// prints one table row per server: medians of requests per second and per
// server CPU-second, and (last column) each server's figure over the first's.
void measure(const char* title, const std::vector<Case>& cases,
             std::vector<Server> (*servers_for)(const Case&, const Paths& paths),
             const Paths& paths, double seconds, int rounds, std::uint16_t& port,
             std::vector<NetResult>* results) {
  std::printf("\n%s, %.0f s per run, medians of %d\n\n", title, seconds, rounds);
  std::printf(
      "| workload | server | req/s | req per server CPU-s | p50 us | p99 us | user / system / "
      "softirq us per req (CPU 0's if pinned) | / first server (per CPU-s) |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
  for (const Case& c : cases) {
    const std::vector<Server> servers = servers_for(c, paths);
    const std::size_t n = servers.size();
    std::vector<std::vector<Sample>> samples(n);
    for (int round = 0; round < rounds; ++round) {
      for (std::size_t k = 0; k < n; ++k) {
        const std::size_t which = (k + static_cast<std::size_t>(round)) % n;  // rotate the order
        const Server& s = servers[which];
        const pid_t pid = start(s, ++port);
        const CpuTimes before = process_times(pid), cpu0_before = cpu_times(0);
        LoadOptions o;
        o.port = port;
        o.workload = c.workload;
        o.connections = c.connections;
        o.seconds = seconds;
        const LoadResult r = run_load(o);
        const CpuTimes after = process_times(pid), cpu0_after = cpu_times(0);
        stop(pid);
        const double cpu = (after.user - before.user) + (after.kernel - before.kernel);
        const double requests = static_cast<double>(r.requests);
        const CpuTimes& from = s.pinned ? cpu0_before : before;
        const CpuTimes& to = s.pinned ? cpu0_after : after;
        auto us_per_request = [&](double CpuTimes::*kind) {
          return requests > 0 ? (to.*kind - from.*kind) * 1e6 / requests : 0;
        };
        samples[which].push_back({r.requests_per_second, cpu > 0 ? requests / cpu : 0, r.p50_us,
                                  r.p99_us, us_per_request(&CpuTimes::user),
                                  us_per_request(&CpuTimes::kernel),
                                  us_per_request(&CpuTimes::softirq)});
      }
    }
    double first = 0;
    for (std::size_t k = 0; k < n; ++k) {
      auto pick = [&](double Sample::*field) {
        std::vector<double> v;
        for (const Sample& s : samples[k]) v.push_back(s.*field);
        return median(v);
      };
      const double per_cpu = pick(&Sample::rps_per_cpu);
      if (k == 0) first = per_cpu;
      results->push_back({workload_name(c.workload), c.connections, servers[k].label, per_cpu});
      std::printf("| %s c=%d | %s | %.0f | %.0f | %.0f | %.0f |", workload_name(c.workload),
                  c.connections, servers[k].label, pick(&Sample::rps), per_cpu, pick(&Sample::p50),
                  pick(&Sample::p99));
      if (servers[k].pinned) {
        std::printf(" %.2f / %.2f / %.2f |", pick(&Sample::user_us), pick(&Sample::kernel_us),
                    pick(&Sample::softirq_us));
      } else {
        std::printf(" %.2f / %.2f / - |", pick(&Sample::user_us), pick(&Sample::kernel_us));
      }
      if (k > 0) {
        std::printf(" %.2f |\n", first > 0 ? per_cpu / first : 0);
      } else {
        std::printf(" |\n");
      }
    }
    std::fflush(stdout);
  }
}

// fiberloop on each backend (io_uring is the default), against the plain
// epoll server and the plain io_uring server (bench/uring_server.cc: what
// io_uring itself can do here). The TLS and every-core rows run fiberloop
// on epoll, the backend their figures were first taken on.
std::vector<Server> one_core_servers(const Case& c, const Paths& paths) {
  const bool is_http = c.workload == Workload::kHttp;
  const char* mode = is_http ? "http" : "echo";
  const std::string& ours = is_http ? paths.http : paths.echo;
  std::vector<Server> servers{{"plain epoll", paths.epoll, {"--mode", mode}},
                              {"fiberloop epoll", ours, {"--loops", "1"}}};
  if (!paths.uring.empty()) {
    servers.push_back({"plain io_uring", paths.uring, {"--mode", mode}});
    servers.push_back({"fiberloop io_uring", ours, {"--loops", "1"}, true, "io_uring"});
  }
  return servers;
}

std::vector<Server> every_core_servers(const Case& c, const Paths& paths) {
  const bool is_http = c.workload == Workload::kHttp;
  const std::string& ours = is_http ? paths.http : paths.echo;
  const char* mode = is_http ? "http" : "echo";
  return {{"fiberloop, 1 loop", ours, {"--loops", "1"}, false},
          {"fiberloop, 2 loops", ours, {"--loops", "2"}, false},
          {"plain epoll", paths.epoll, {"--mode", mode}, false},
          {"plain epoll, 2 threads", paths.epoll, {"--mode", mode, "--threads", "2"}, false}};
}

std::vector<Server> tls_servers(const Case&, const Paths& paths) {
  return {
      {"plain OpenSSL + epoll", paths.tls_epoll, {"--cert", paths.cert, "--key", paths.key}},
      {"fiberloop", paths.tls_echo, {"--cert", paths.cert, "--key", paths.key, "--loops", "1"}}};
}

}  // namespace

bool run_network_report(const char* argv0, double seconds, int rounds,
                        std::vector<NetResult>* results) {
  const testing::TestCerts certs;
  const Paths paths{find_binary(argv0, "bench/epoll_server"),
                    find_binary(argv0, "examples/echo_server"),
                    find_binary(argv0, "examples/http_hello"),
                    find_binary(argv0, "bench/tls_epoll_server"),
                    find_binary(argv0, "examples/tls_echo_server"),
                    certs.cert("server"),
                    certs.key("server"),
                    find_binary(argv0, "bench/uring_server")};
  for (const std::string* binary :
       {&paths.epoll, &paths.echo, &paths.http, &paths.tls_epoll, &paths.tls_echo}) {
    if (binary->empty()) {
      std::fprintf(stderr, "report: the network servers were not found beside %s\n", argv0);
      return false;
    }
  }
  // Below the ephemeral range (32768+), where the load's own client sockets live.
  std::uint16_t port = static_cast<std::uint16_t>(12000 + ::getpid() % 10000);
  pin(1);
  measure("Network: server on CPU 0, load generator on CPU 1",
          {{Workload::kEcho, 1},
           {Workload::kEcho, 50},
           {Workload::kEcho, 1000},
           {Workload::kHttp, 50},
           {Workload::kHttp, 1000},
           {Workload::kChurn, 50}},
          &one_core_servers, paths, seconds, rounds, port, results);
  measure("TLS 1.3 (ECDSA P-256), fiberloop on epoll: server on CPU 0, load generator on CPU 1",
          {{Workload::kTlsEcho, 50}, {Workload::kTlsHandshake, 50}}, &tls_servers, paths, seconds,
          rounds, port, results);
  unpin();
  std::vector<NetResult> cores;
  char title[160];
  std::snprintf(title, sizeof title,
                "Network on every core (%ld CPUs), fiberloop on epoll: servers and load "
                "generator unpinned",
                ::sysconf(_SC_NPROCESSORS_ONLN));
  measure(title,
          {{Workload::kEcho, 50},
           {Workload::kEcho, 1000},
           {Workload::kHttp, 50},
           {Workload::kHttp, 1000}},
          &every_core_servers, paths, seconds, rounds, port, &cores);
  for (NetResult& r : cores) r.workload = "cores " + r.workload;
  results->insert(results->end(), cores.begin(), cores.end());
  return true;
}

}  // namespace fiberloop::bench
