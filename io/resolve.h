// resolve: names to addresses, without blocking the loop.
//
//   for (auto& a : fiberloop::resolve("localhost", 80)) std::cout << a.to_string() << '\n';
#pragma once

#include <cstdint>
#include <string_view>
#include <system_error>
#include <vector>

#include "io/socket_address.h"

namespace fiberloop {

// getaddrinfo's error codes (EAI_*) as an error category.
const std::error_category& resolver_category() noexcept;

// Looks `host` up (getaddrinfo, on a run_blocking() worker thread; numeric
// addresses are parsed at once) and returns its addresses for `port`, in the
// resolver's order, without duplicates.
// Throws: std::system_error in resolver_category() with the resolver's message
//         ("resolve no-such-host.invalid: Name or service not known"), or
//         in generic_category() with errno where the resolver's own system
//         call failed (EAI_SYSTEM); Cancelled; TimeoutError;
//         std::invalid_argument for a host with a NUL byte.
std::vector<SocketAddress> resolve(std::string_view host, std::uint16_t port);

}  // namespace fiberloop
