// The bytes a char array passed as data stands for. A string literal
// converts to std::span<const char> with its terminating NUL ("abc" is 4
// bytes), so the calls that take data (Stream::write, UdpSocket::send_to,
// File::write_at) also take char arrays, through these.
#pragma once

#include <cstddef>
#include <span>
#include <type_traits>

namespace fiberloop::internal {

// A const char array is text: a string literal's characters without the
// terminating NUL (write("abc") writes 3 bytes). A final NUL is dropped
// only if there is one, so binary data that may end in a zero byte (a
// const array, or a member read through a const reference) goes through
// std::span.
template <std::size_t N>
constexpr std::span<const char> text_bytes(const char (&text)[N]) noexcept {
  return {text, (N > 0 && text[N - 1] == '\0') ? N - 1 : N};
}

// A mutable char array is refused, with this one message: whether all of
// it is meant or the text up to its first NUL (a buffer snprintf filled)
// cannot be told, and each guess has sent wrong bytes.
template <std::size_t N>
inline constexpr bool kAcceptMutableCharArray = false;  // false, once instantiated
template <std::size_t N>
constexpr std::span<const char> text_bytes(char (&buf)[N]) noexcept {
  static_assert(kAcceptMutableCharArray<N>,
                "a char buffer's length is ambiguous (all of it, or up to its first NUL?): "
                "pass std::span<const char>(buf, n) for bytes, or std::string_view(buf) for "
                "the text in it");
  return {buf, N};
}

// A char or const char array, for the data calls' overloads.
template <class C>
concept CharArrayElement = (std::is_same_v<std::remove_const_t<C>, char>);

}  // namespace fiberloop::internal
