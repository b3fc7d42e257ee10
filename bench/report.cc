// //bench:report — runs every benchmark linked in (fiberloop and its peers,
// in this one process), pinned to one CPU (the every-core benchmarks unpin
// their own threads: cores_bench.cc), as medians of repeats, and prints one
// table: each fiberloop figure, its target, each peer's, and the ratio.
//
//   ./bazelw run -c opt //bench:report [-- --benchmark_filter=yield]
//
// Also writes report.svg (bars per operation, lines for how costs grow with
// fibers, timers and connections) to --out_dir=DIR, by default bench/results
// in the workspace.
#include <benchmark/benchmark.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "bench/loadgen.h"
#include "bench/net_report.h"
#include "bench/report_rows.h"
#include "bench/svg_chart.h"

namespace {

using fiberloop::bench::Peer;
using fiberloop::bench::Row;
using fiberloop::bench::rows;

// Keeps the median of each benchmark, as ns per item or a named counter.
class Collector : public benchmark::ConsoleReporter {
 public:
  explicit Collector(bool color) : ConsoleReporter(color ? OO_ColorTabular : OO_Tabular) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") continue;
      const std::string name = run.run_name.str();
      if (auto it = run.counters.find("items_per_second"); it != run.counters.end()) {
        ns_per_item[name] = 1e9 / it->second.value;
      }
      for (const auto& [key, counter] : run.counters) counters[name + ":" + key] = counter.value;
    }
  }
  std::map<std::string, double> ns_per_item;
  std::map<std::string, double> counters;
};

bool lookup(const Collector& c, const char* bench, const char* counter, double* value) {
  if (counter != nullptr) {
    auto it = c.counters.find(std::string(bench) + ":" + counter);
    if (it == c.counters.end()) return false;
    *value = it->second;
    return true;
  }
  auto it = c.ns_per_item.find(bench);
  if (it == c.ns_per_item.end()) return false;
  *value = it->second;
  return true;
}

void print_table(const Collector& c) {
  std::printf("\nfiberloop against its peers (medians; ratio = fiberloop / peer)\n\n");
  std::printf("| operation | fiberloop | target | peer | peer figure | ratio |\n");
  std::printf("| --- | --- | --- | --- | --- | --- |\n");
  for (const Row& row : rows()) {
    double ours = 0;
    if (!lookup(c, row.bench, row.counter, &ours)) continue;  // filtered out
    std::printf("| %s | %.1f %s | %s |", row.operation, ours, row.unit, row.target);
    if (row.peers.empty()) std::printf(" | | |\n");
    bool first = true;
    for (const Peer& peer : row.peers) {
      double theirs = 0;
      if (!lookup(c, peer.bench, row.counter, &theirs)) continue;
      if (!first) std::printf("| | | |");
      std::printf(" %s | %.1f %s | %.2fx |\n", peer.label, theirs, row.unit, ours / theirs);
      first = false;
    }
    if (first && !row.peers.empty()) std::printf(" | | |\n");
  }
}

// The chart: a bar group per row measured in time per operation, and lines
// for how costs grow with ready fibers, pending timers and connections.
std::string chart(const Collector& c, const std::vector<fiberloop::bench::NetResult>& net) {
  using namespace fiberloop::bench;
  std::vector<BarGroup> groups;
  for (const Row& row : rows()) {
    const std::string unit = row.unit;
    if (row.counter != nullptr || unit.rfind("ns", 0) != 0) continue;  // bytes, MiB: not time
    double ours = 0;
    if (!lookup(c, row.bench, nullptr, &ours)) continue;
    BarGroup g{std::string(row.operation) + " (" + unit + ")", {{"fiberloop", ours, true}}};
    for (const Peer& peer : row.peers) {
      double theirs = 0;
      if (!lookup(c, peer.bench, nullptr, &theirs)) continue;
      g.bars.push_back({peer.label, theirs, std::strncmp(peer.label, "fiberloop", 9) == 0});
    }
    groups.push_back(std::move(g));
  }
  std::vector<LinePanel> panels;
  auto series = [&](const char* label, std::vector<std::pair<double, const char*>> points,
                    bool ours) {
    Series s{label, {}, ours};
    for (auto [x, bench] : points) {
      double y = 0;
      if (lookup(c, bench, nullptr, &y)) s.points.push_back({x, y});
    }
    return s;
  };
  LinePanel fibers{
      "yield cost as ready fibers grow", "fibers ready", "ns per yield", true, true, {}};
  fibers.series.push_back(series("fiberloop yield",
                                 {{2, "BM_fiberloop_yield/2"},
                                  {10, "BM_fiberloop_yield_many/10"},
                                  {100, "BM_fiberloop_yield_many/100"},
                                  {1000, "BM_fiberloop_yield_many/1000"},
                                  {1e4, "BM_fiberloop_yield_many/10000"},
                                  {1e5, "BM_fiberloop_yield_many/100000"},
                                  {1e6, "BM_fiberloop_yield_many/1000000"}},
                                 true));
  LinePanel timers{"timer cost as pending timers grow", "timers pending", "ns", true, false, {}};
  timers.series.push_back(
      series("insert", {{1e3, "BM_timer_insert/1000"}, {1e6, "BM_timer_insert/1000000"}}, true));
  timers.series.push_back(
      series("cancel", {{1e3, "BM_timer_cancel/1000"}, {1e6, "BM_timer_cancel/1000000"}}, false));
  timers.series.push_back(series("std::priority_queue push",
                                 {{1e6, "BM_priority_queue_push/1000000/iterations:20"}}, false));
  LinePanel cores{
      "skynet (1M leaf fibers) as loops grow", "loops", "ns per leaf", false, false, {}};
  cores.series.push_back(series("fiberloop",
                                {{1, "BM_cores_skynet/1/iterations:3/repeats:3/real_time"},
                                 {2, "BM_cores_skynet/2/iterations:3/repeats:3/real_time"}},
                                true));
  for (LinePanel* p : {&fibers, &timers, &cores}) {
    std::erase_if(p->series, [](const Series& s) { return s.points.empty(); });
    if (!p->series.empty()) panels.push_back(*p);
  }
  // NetResult::workload holds workload_name(): "echo 64 B", "HTTP hello".
  using fiberloop::bench::Workload;
  using fiberloop::bench::workload_name;
  for (const Workload w : {Workload::kEcho, Workload::kHttp}) {
    const std::string workload = workload_name(w);
    LinePanel conns{workload + ": requests per server CPU-second",
                    "connections",
                    "requests / CPU-s",
                    true,
                    false,
                    {}};
    for (const char* server :
         {"fiberloop io_uring", "fiberloop epoll", "plain epoll", "plain io_uring"}) {
      Series s{server, {}, std::strcmp(server, "fiberloop io_uring") == 0};
      for (const NetResult& r : net) {
        if (r.workload == workload && r.server == server)
          s.points.push_back({static_cast<double>(r.connections), r.requests_per_cpu_second});
      }
      if (!s.points.empty()) conns.series.push_back(std::move(s));
    }
    if (!conns.series.empty()) panels.push_back(std::move(conns));
  }
  for (const Workload w : {Workload::kEcho, Workload::kHttp}) {
    const std::string workload = std::string("cores ") + workload_name(w);
    LinePanel loops{
        std::string(workload_name(w)) + " on every core: requests per server CPU-second",
        "loops",
        "requests / CPU-s",
        false,
        false,
        {}};
    for (int conns : {50, 1000}) {
      Series s{"c=" + std::to_string(conns), {}, conns == 1000};
      for (const NetResult& r : net) {
        if (r.workload != workload || r.connections != conns) continue;
        if (r.server == "fiberloop, 1 loop") s.points.push_back({1, r.requests_per_cpu_second});
        if (r.server == "fiberloop, 2 loops") s.points.push_back({2, r.requests_per_cpu_second});
      }
      if (!s.points.empty()) loops.series.push_back(std::move(s));
    }
    if (!loops.series.empty()) panels.push_back(std::move(loops));
  }
  return render_chart(
      "fiberloop against its peers (medians, one process; every-core rows on 2 "
      "loops)",
      groups, panels);
}

// Where the chart goes: --out_dir, else bench/results in the workspace
// (bazel run sets BUILD_WORKSPACE_DIRECTORY), else the current directory.
std::filesystem::path out_dir(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY"))
    return std::filesystem::path(ws) / "bench" / "results";
  return std::filesystem::current_path();
}

// Runs on one CPU (the last one) so that figures do not mix cores.
void pin_to_one_cpu() {
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<int>(cpus - 1), &set);
  if (::sched_setaffinity(0, sizeof(set), &set) == 0) {
    std::fprintf(stderr, "report: pinned to CPU %ld\n", cpus - 1);
  }
}

// The number after a flag's `=` (at `at`), which must be positive: else
// says which flag and exits 2.
double positive_flag(const std::string& arg, std::size_t at) {
  char* end = nullptr;
  const double value = std::strtod(arg.c_str() + at, &end);
  if (end == arg.c_str() + at || *end != '\0' || !(value > 0)) {
    std::fprintf(stderr, "report: %s: expected a positive number after '='\n", arg.c_str());
    std::exit(2);
  }
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  // --no-net skips the network part; --net_seconds=S and --net_rounds=N size it.
  bool net = true;
  std::string out_flag;
  double net_seconds = 2.0;
  int net_rounds = 3;
  std::vector<char*> args{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--no-net") {
      net = false;
    } else if (a.rfind("--net_seconds=", 0) == 0) {
      net_seconds = positive_flag(a, 14);
    } else if (a.rfind("--net_rounds=", 0) == 0) {
      net_rounds = static_cast<int>(positive_flag(a, 13));
    } else if (a.rfind("--out_dir=", 0) == 0) {
      out_flag = a.substr(10);
    } else {
      args.push_back(argv[i]);
    }
  }
  pin_to_one_cpu();
  std::string reps = "--benchmark_repetitions=5";
  std::string aggregates = "--benchmark_report_aggregates_only=true";
  std::string color =
      ::isatty(STDOUT_FILENO) ? "--benchmark_color=true" : "--benchmark_color=false";
  // Defaults first, so that the user's own flags win.
  args.insert(args.begin() + 1, {reps.data(), aggregates.data(), color.data()});
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  Collector collector(::isatty(STDOUT_FILENO));
  benchmark::RunSpecifiedBenchmarks(&collector);
  print_table(collector);
  std::vector<fiberloop::bench::NetResult> net_results;
  if (net &&
      !fiberloop::bench::run_network_report(argv[0], net_seconds, net_rounds, &net_results)) {
    return 1;
  }
  const std::filesystem::path dir = out_dir(out_flag);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::filesystem::path svg = dir / "report.svg";
  std::ofstream(svg) << chart(collector, net_results);
  std::printf("\nreport: chart written to %s\n", svg.c_str());
  return 0;
}
