// A load generator: N connections over loopback, each sending a request and
// waiting for the whole response before the next (closed loop), for a fixed
// time; requests per second and latency percentiles from a histogram. One
// thread, epoll, no fibers: it must not be what limits the measurement.
// TLS workloads use OpenSSL the same way.
#pragma once

#include <cstdint>
#include <string>

namespace fiberloop::bench {

enum class Workload {
  kEcho,   // 64-byte request, 64-byte echo
  kHttp,   // "GET / HTTP/1.1", a whole response (Content-Length) back
  kChurn,  // connect, one 64-byte echo round trip, close
  // Over TLS 1.3 (tls_loadgen.cc):
  kTlsEcho,       // 1 KiB request, 1 KiB echo
  kTlsHandshake,  // connect, a full handshake, a 1-byte echo, close
};

struct LoadOptions {
  std::uint16_t port = 7000;
  Workload workload = Workload::kEcho;
  int connections = 50;
  double seconds = 2.0;
};

struct LoadResult {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  double seconds = 0;
  double requests_per_second = 0;
  double p50_us = 0;
  double p99_us = 0;
};

LoadResult run_load(const LoadOptions& options);      // any workload
LoadResult run_tls_load(const LoadOptions& options);  // kTlsEcho and kTlsHandshake

const char* workload_name(Workload w);

}  // namespace fiberloop::bench
