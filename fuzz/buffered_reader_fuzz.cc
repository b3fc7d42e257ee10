// BufferedReader against a model: the input is a script of chunks the stream
// delivers and reader calls to make (read_line, read_until, read_slice,
// read_exactly, read), with a small limit so that overruns happen. Each call's result, and
// each exception, must match what a plain string-based model computes from
// the bytes not yet consumed.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "fiberloop.h"

namespace {

// Reads the fuzz input a byte at a time; 0 past its end.
class Script {
 public:
  Script(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool done() const { return at_ >= size_; }
  std::uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
  std::string bytes(std::size_t n) {
    std::string s;
    while (n-- > 0 && !done()) s += static_cast<char>("ab\r\n-"[byte() % 5]);
    return s;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

// A stream that hands out the chunks it was given, one read at a time
// (short reads included), then end of stream.
class ChunkStream final : public fiberloop::Stream {
 public:
  std::vector<std::string> chunks;
  void shutdown_write() override {}
  void close() noexcept override {}
  bool is_open() const noexcept override { return true; }

 protected:
  std::size_t read_some(std::span<char> buf) override {
    while (next_ < chunks.size() && offset_ == chunks[next_].size()) ++next_, offset_ = 0;
    if (next_ == chunks.size()) return 0;
    const std::string& c = chunks[next_];
    const std::size_t n = std::min(buf.size(), c.size() - offset_);
    c.copy(buf.data(), n, offset_);
    offset_ += n;
    return n;
  }
  std::size_t write_some(std::span<const char> buf) override { return buf.size(); }

 private:
  std::size_t next_ = 0, offset_ = 0;
};

[[noreturn]] void mismatch() { std::abort(); }

void check(bool ok) {
  if (!ok) mismatch();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Script script(data, size);
  ChunkStream stream;
  const std::size_t chunk_count = script.byte() % 8;
  std::string all;  // every byte the stream will deliver
  for (std::size_t i = 0; i < chunk_count; ++i) {
    stream.chunks.push_back(script.bytes(script.byte() % 24));
    all += stream.chunks.back();
  }
  const std::size_t limit = 1 + script.byte() % 12;
  fiberloop::BufferedReader reader(stream, limit);
  std::size_t pos = 0;  // the model: all[pos..] is what the reader has not handed out
  while (!script.done()) {
    const std::string rest = all.substr(pos);
    switch (script.byte() % 4) {
      case 0: {  // read_line
        const std::size_t nl = rest.find('\n');
        std::optional<std::string> expected;
        bool overrun = false;
        if (nl != std::string::npos) {
          overrun = nl + 1 > limit;
          expected = rest.substr(0, nl);
        } else {
          // No newline in the rest: the reader may overrun before it sees the end.
          overrun = rest.size() >= limit;
          if (!rest.empty()) expected = rest;
        }
        if (expected && !expected->empty() && expected->back() == '\r') expected->pop_back();
        try {
          const std::optional<std::string> got = reader.read_line();
          check(!overrun && got == expected);
          pos = nl != std::string::npos ? pos + nl + 1 : all.size();
        } catch (const fiberloop::LimitOverrunError&) {
          check(overrun);
        }
        break;
      }
      case 1: {  // read_until or read_slice, a delimiter of one or two bytes
        const std::uint8_t how = script.byte();
        const std::string delim = how % 2 ? "\r\n" : "-";
        const std::size_t at = rest.find(delim);
        try {
          // The slice is copied before the next call on the reader.
          const std::string got =
              (how / 2) % 2 ? std::string(reader.read_slice(delim)) : reader.read_until(delim);
          check(at != std::string::npos && at + delim.size() <= limit &&
                got == rest.substr(0, at + delim.size()));
          pos += got.size();
        } catch (const fiberloop::LimitOverrunError&) {
          check(at == std::string::npos ? rest.size() >= limit : at + delim.size() > limit);
        } catch (const fiberloop::IncompleteReadError& e) {
          check(at == std::string::npos && rest.size() < limit && e.partial() == rest);
          pos = all.size();
        }
        break;
      }
      case 2: {  // read_exactly
        const std::size_t n = script.byte() % 20;
        try {
          const std::string got = reader.read_exactly(n);
          check(n <= rest.size() && got == rest.substr(0, n));
          pos += n;
        } catch (const fiberloop::IncompleteReadError& e) {
          check(n > rest.size() && e.partial() == rest);
          pos = all.size();
        }
        break;
      }
      default: {  // read
        char buf[16];
        const std::size_t want = 1 + script.byte() % sizeof buf;
        const std::size_t got = reader.read({buf, want});
        check(got <= want && std::string(buf, got) == rest.substr(0, got));
        check(got > 0 || rest.empty());
        pos += got;
        break;
      }
    }
  }
  return 0;
}
