// Each measurement: start a server pinned to CPU 0, wait until it accepts,
// drive it from this process pinned to CPU 1, read the server's CPU time
// from /proc, stop it. fiberloop and the plain epoll server alternate, and
// the table shows medians over the rounds: requests per second (bounded by
// the load generator's own core on a 2-core machine) and requests per second
// of server CPU (the fairer figure).
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

namespace fiberloop::bench {
namespace {

struct Server {
  const char* label;
  std::string path;
  std::vector<std::string> args;  // after the binary
};

struct Sample {
  double rps = 0, rps_per_cpu = 0, p50 = 0, p99 = 0;
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

double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  std::getline(in, s);
  const std::size_t close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields;
  std::string f;
  for (std::size_t i = close + 2; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == ' ') {
      fields.push_back(f);
      f.clear();
    } else {
      f += s[i];
    }
  }
  // fields[0] is the state (field 3); utime and stime are fields 14 and 15.
  if (fields.size() < 13) return 0;
  return (std::stod(fields[11]) + std::stod(fields[12])) /
         static_cast<double>(::sysconf(_SC_CLK_TCK));
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
    pin(0);
    std::vector<std::string> args{s.path, "--port", std::to_string(port)};
    args.insert(args.end(), s.args.begin(), s.args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
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

}  // namespace

bool run_network_report(const char* argv0, double seconds, int rounds,
                        std::vector<NetResult>* results) {
  const std::string epoll = find_binary(argv0, "bench/epoll_server");
  const std::string echo = find_binary(argv0, "examples/echo_server");
  const std::string http = find_binary(argv0, "examples/http_hello");
  if (epoll.empty() || echo.empty() || http.empty()) {
    std::fprintf(stderr, "report: the network servers were not found beside %s\n", argv0);
    return false;
  }
  struct Case {
    Workload workload;
    int connections;
  };
  const Case cases[] = {{Workload::kEcho, 1},  {Workload::kEcho, 50},   {Workload::kEcho, 1000},
                        {Workload::kHttp, 50}, {Workload::kHttp, 1000}, {Workload::kChurn, 50}};
  // Below the ephemeral range (32768+), where the load's own client sockets live.
  std::uint16_t port = static_cast<std::uint16_t>(12000 + ::getpid() % 10000);
  pin(1);
  std::printf(
      "\nNetwork: server on CPU 0, load generator on CPU 1, %.0f s per run, medians of %d\n\n",
      seconds, rounds);
  std::printf(
      "| workload | server | req/s | req per server CPU-s | p50 us | p99 us | fiberloop / epoll "
      "(per CPU-s) |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
  for (const Case& c : cases) {
    const bool is_http = c.workload == Workload::kHttp;
    const Server servers[2] = {
        {"plain epoll", epoll, {"--mode", is_http ? "http" : "echo"}},
        {"fiberloop", is_http ? http : echo, {}},
    };
    std::vector<Sample> samples[2];
    for (int round = 0; round < rounds; ++round) {
      for (int k = 0; k < 2; ++k) {
        const int which = (round % 2 == 0) ? k : 1 - k;  // alternate who goes first
        const Server& s = servers[which];
        const pid_t pid = start(s, ++port);
        const double cpu_before = cpu_seconds(pid);
        LoadOptions o;
        o.port = port;
        o.workload = c.workload;
        o.connections = c.connections;
        o.seconds = seconds;
        const LoadResult r = run_load(o);
        const double cpu = cpu_seconds(pid) - cpu_before;
        stop(pid);
        samples[which].push_back({r.requests_per_second,
                                  cpu > 0 ? static_cast<double>(r.requests) / cpu : 0, r.p50_us,
                                  r.p99_us});
      }
    }
    double per_cpu[2];
    for (int k = 0; k < 2; ++k) {
      auto pick = [&](double Sample::*field) {
        std::vector<double> v;
        for (const Sample& s : samples[k]) v.push_back(s.*field);
        return median(v);
      };
      per_cpu[k] = pick(&Sample::rps_per_cpu);
      results->push_back({workload_name(c.workload), c.connections, servers[k].label, per_cpu[k]});
      std::printf("| %s c=%d | %s | %.0f | %.0f | %.0f | %.0f |", workload_name(c.workload),
                  c.connections, servers[k].label, pick(&Sample::rps), per_cpu[k],
                  pick(&Sample::p50), pick(&Sample::p99));
      if (k == 1)
        std::printf(" %.2f |\n", per_cpu[0] > 0 ? per_cpu[1] / per_cpu[0] : 0);
      else
        std::printf(" |\n");
    }
    std::fflush(stdout);
  }
  return true;
}

}  // namespace fiberloop::bench
