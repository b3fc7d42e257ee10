// Random 4 KiB reads of a 1 GiB file by 64 fibers: File::read_at as
// io_uring READ operations (an io_uring loop) against the same calls on the
// loop's worker threads (an epoll loop), in the same binary. The file is
// written once per process and sits in the page cache (what is measured is
// the path to the kernel, not the disk).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "fiberloop.h"

namespace {

constexpr std::uint64_t kFileBytes = std::uint64_t{1} << 30;  // 1 GiB
constexpr std::size_t kBlock = 4096;
constexpr int kFibers = 64;
constexpr int kReadsPerFiber = 256;  // per iteration: 16384 reads

// The 1 GiB file, written at first use and removed at exit.
const std::string& test_file() {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    std::string p = std::string(dir != nullptr ? dir : "/tmp") + "/fiberloop_file_bench_" +
                    std::to_string(::getpid());
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      std::perror(("file_bench: open " + p).c_str());
      std::exit(1);
    }
    std::vector<char> chunk(1 << 20);
    for (std::uint64_t at = 0; at < kFileBytes; at += chunk.size()) {
      for (std::size_t i = 0; i < chunk.size(); i += kBlock) chunk[i] = static_cast<char>(at >> 12);
      if (::pwrite(fd, chunk.data(), chunk.size(), static_cast<off_t>(at)) !=
          static_cast<ssize_t>(chunk.size())) {
        std::perror(("file_bench: write " + p).c_str());
        std::exit(1);
      }
    }
    ::close(fd);
    static const std::string removed = p;
    std::atexit([] { ::unlink(removed.c_str()); });
    return p;
  }();
  return path;
}

void BM_file_random_reads(benchmark::State& state, fiberloop::Backend backend) {
  const std::string& path = test_file();
  for (auto _ : state) {
    fiberloop::Loop loop({.backend = backend});
    loop.run_until_complete([&] {
      fiberloop::File file = fiberloop::File::open(path, O_RDONLY);
      fiberloop::TaskGroup readers;
      for (int f = 0; f < kFibers; ++f) {
        readers.spawn([&file, f] {
          std::mt19937_64 rng(static_cast<std::uint64_t>(f) + 1);
          char block[kBlock];
          for (int i = 0; i < kReadsPerFiber; ++i) {
            const std::uint64_t at = rng() % (kFileBytes / kBlock) * kBlock;
            if (file.read_at(block, at) != kBlock) std::abort();
          }
        });
      }
      readers.join();
    });
  }
  state.SetItemsProcessed(state.iterations() * kFibers * kReadsPerFiber);
}
// Real time: the thread-pool path's work is on other threads.
BENCHMARK_CAPTURE(BM_file_random_reads, thread_pool, fiberloop::Backend::epoll)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_file_random_reads, io_uring, fiberloop::Backend::io_uring)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
