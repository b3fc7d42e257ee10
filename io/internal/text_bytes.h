// The bytes a char array passed as data stands for. A string literal
// converts to std::span<const char> with its terminating NUL ("abc" is 4
// bytes), so the calls that take data (Stream::write, UdpSocket::send_to,
// File::write_at) also take char arrays, through these.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>
#include <type_traits>

namespace fiberloop::internal {

// A const char array is text: a string literal's characters without the
// terminating NUL (write("abc") writes 3 bytes). A final NUL is dropped
// only if there is one; binary data goes through std::span.
template <std::size_t N>
constexpr std::span<const char> text_bytes(const char (&text)[N]) noexcept {
  return {text, (N > 0 && text[N - 1] == '\0') ? N - 1 : N};
}

// A mutable char array is a buffer: all of it.
template <std::size_t N>
constexpr std::span<const char> text_bytes(char (&buf)[N]) noexcept {
  return {buf, N};
}

// A char or const char array, for the data calls' overloads.
template <class C>
concept CharArrayElement = std::same_as < std::remove_const_t<C>,
char > ;

}  // namespace fiberloop::internal
