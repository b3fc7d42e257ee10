#include "io/stream.h"

namespace fiberloop {

void Stream::read_exact(std::span<char> buf) {
  std::size_t got = 0;
  while (got < buf.size()) {
    const std::size_t n = socket_.read_some(buf.subspan(got));
    if (n == 0) {
      throw EndOfStream("read_exact fd " + std::to_string(fd()) + ": end of stream after " +
                        std::to_string(got) + " of " + std::to_string(buf.size()) + " bytes");
    }
    got += n;
  }
}

void Stream::write_all(std::string_view data) {
  while (!data.empty()) data.remove_prefix(socket_.write_some(data));
}

}  // namespace fiberloop
