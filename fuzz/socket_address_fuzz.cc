// Fuzz target: SocketAddress::parse on arbitrary text either throws
// std::invalid_argument that quotes the text, or returns an IPv4/IPv6
// address whose to_string() parses back to the same address.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "io/socket_address.h"

namespace {

[[noreturn]] void fail(const char* what, std::string_view text) {
  std::fprintf(stderr, "socket_address_fuzz: %s for input '%.*s'\n", what,
               static_cast<int>(text.size()), text.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  fiberloop::SocketAddress address;
  try {
    address = fiberloop::SocketAddress::parse(text);
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    if (message.rfind("SocketAddress: '", 0) != 0)
      fail("an error that does not name the text", text);
    return 0;
  }
  if (!address.is_ipv4() && !address.is_ipv6()) fail("a parsed address that is not IP", text);
  const std::string printed = address.to_string();
  if (!(fiberloop::SocketAddress::parse(printed) == address))
    fail("a round trip that differs", text);
  return 0;
}
