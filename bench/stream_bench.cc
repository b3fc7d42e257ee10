// The stream layer against what a user writes by hand, in the same binary:
// BufferedReader::read_line against a read + memchr loop over the same
// loopback stream, and Process spawn + wait against posix_spawn + waitpid
// on a thread.
#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "fiberloop.h"

extern char** environ;

namespace {

constexpr std::size_t kStreamBytes = 64 << 20;  // 64 MiB
constexpr std::size_t kLineBytes = 64;          // newline included

// One pass: a writer fiber sends 64 MiB of 64-byte lines over a loopback
// Unix socket; `read_lines` reads them all and returns how many it saw.
template <class ReadLines>
std::size_t one_pass(ReadLines read_lines) {
  return fiberloop::run([&] {
    const std::string path = "@fiberloop_bench_" + std::to_string(::getpid());
    auto listener = fiberloop::UnixListener::bind(path);
    auto writer = fiberloop::spawn([&] {
      auto out = listener.accept();
      std::string block;
      for (std::size_t i = 0; i < (256 << 10) / kLineBytes; ++i) {
        block += std::string(kLineBytes - 1, static_cast<char>('a' + i % 26)) + "\n";
      }
      for (std::size_t sent = 0; sent < kStreamBytes; sent += block.size()) out.write_all(block);
      out.shutdown_write();
    });
    auto in = fiberloop::UnixStream::connect(path);
    const std::size_t lines = read_lines(in);
    writer.join();
    return lines;
  });
}

void BM_buffered_reader_read_line(benchmark::State& state) {
  std::size_t lines = 0;
  for (auto _ : state) {
    lines = one_pass([](fiberloop::Stream& in) {
      fiberloop::BufferedReader reader(in);
      std::size_t n = 0;
      while (std::optional<std::string> line = reader.read_line()) {
        benchmark::DoNotOptimize(line->data());
        ++n;
      }
      return n;
    });
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kStreamBytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * lines));  // ns per line
}
BENCHMARK(BM_buffered_reader_read_line)->Unit(benchmark::kMillisecond);

// Stream::read itself: the 64 MiB taken 64 bytes per read (a system call
// each, the data already there), so that what read() adds around the
// syscall shows: ns per read.
void BM_stream_read_64_bytes(benchmark::State& state) {
  for (auto _ : state) {
    one_pass([](fiberloop::Stream& in) {
      char buf[kLineBytes];
      std::size_t total = 0;
      while (std::size_t n = in.read(buf)) total += n;
      return total;
    });
  }
  state.SetItemsProcessed(
      static_cast<std::int64_t>(state.iterations() * (kStreamBytes / kLineBytes)));
}
BENCHMARK(BM_stream_read_64_bytes)->Unit(benchmark::kMillisecond);

// The peer: what a user writes without a reader: read 64 KiB at a time,
// memchr for each newline, and hand each line out as a std::string (the
// same product as read_line), carrying a partial line over.
void BM_read_memchr_loop(benchmark::State& state) {
  std::size_t lines = 0;
  for (auto _ : state) {
    lines = one_pass([](fiberloop::Stream& in) {
      char buf[64 * 1024];
      std::string carry;
      std::size_t n = 0;
      while (std::size_t got = in.read(buf)) {
        const char* p = buf;
        const char* end = buf + got;
        while (const void* nl = std::memchr(p, '\n', static_cast<std::size_t>(end - p))) {
          const char* e = static_cast<const char*>(nl);
          std::string line = carry.empty() ? std::string(p, e) : carry.append(p, e);
          benchmark::DoNotOptimize(line.data());
          carry.clear();
          ++n;
          p = e + 1;
        }
        carry.append(p, end);
      }
      return n;
    });
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kStreamBytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * lines));
}
BENCHMARK(BM_read_memchr_loop)->Unit(benchmark::kMillisecond);

// Process spawn + wait of /bin/true, from a fiber.
void BM_process_spawn_wait(benchmark::State& state) {
  fiberloop::run([&] {
    for (auto _ : state) {
      auto p = fiberloop::Process::exec({"/bin/true"});
      if (p.wait() != 0) state.SkipWithError("/bin/true failed");
    }
  });
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_process_spawn_wait)->UseRealTime();

// The peer: posix_spawn + a blocking waitpid on a plain thread (what a
// program without an event loop does; the thread waits, nothing else runs).
void BM_posix_spawn_waitpid(benchmark::State& state) {
  char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
  for (auto _ : state) {
    pid_t pid = -1;
    if (::posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ) != 0) {
      state.SkipWithError("posix_spawn failed");
      break;
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_posix_spawn_waitpid)->UseRealTime();

}  // namespace
