// The load generator on its own:
//   loadgen --port 7000 --workload echo|http|churn|tls-echo|tls-handshake --connections 50
//   --seconds 5
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bench/loadgen.h"

int main(int argc, char** argv) {
  using namespace fiberloop::bench;
  LoadOptions o;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--port"))
      o.port = static_cast<std::uint16_t>(std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--connections")) o.connections = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--seconds")) o.seconds = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--workload")) {
      const char* w = argv[i + 1];
      o.workload = !std::strcmp(w, "http")            ? Workload::kHttp
                   : !std::strcmp(w, "churn")         ? Workload::kChurn
                   : !std::strcmp(w, "tls-echo")      ? Workload::kTlsEcho
                   : !std::strcmp(w, "tls-handshake") ? Workload::kTlsHandshake
                                                      : Workload::kEcho;
    }
  }
  const LoadResult r = run_load(o);
  std::printf("%s c=%d: %.0f req/s, p50 %.1f us, p99 %.1f us, %llu requests, %llu errors\n",
              workload_name(o.workload), o.connections, r.requests_per_second, r.p50_us, r.p99_us,
              static_cast<unsigned long long>(r.requests),
              static_cast<unsigned long long>(r.errors));
  return r.errors > r.requests / 100 ? 1 : 0;
}
