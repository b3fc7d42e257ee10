// Text that reaches the kernel or libc as a C string (a path, an argument,
// a host name): a NUL byte inside would end it early, and another path or
// name than the one given would be used. Python and Go refuse such text.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace fiberloop::internal {

// Throws std::invalid_argument naming `what` (the call and the argument,
// "read_file path") and where the NUL byte is, if `text` holds one.
inline void require_c_string(std::string_view text, const char* what) {
  const std::size_t at = text.find('\0');
  if (at == std::string_view::npos) [[likely]]
    return;
  throw std::invalid_argument(std::string(what) + ": a NUL byte at offset " + std::to_string(at) +
                              " would cut '" + std::string(text.substr(0, at)) +
                              "' short; pass text without NUL bytes");
}

}  // namespace fiberloop::internal
