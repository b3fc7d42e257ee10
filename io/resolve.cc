#include "io/resolve.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>

#include "io/internal/c_string.h"
#include "loop/run_blocking.h"

namespace fiberloop {
namespace {

class ResolverCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "resolver"; }
  std::string message(int code) const override { return ::gai_strerror(code); }
};

}  // namespace

const std::error_category& resolver_category() noexcept {
  static const ResolverCategory category;
  return category;
}

std::vector<SocketAddress> resolve(std::string_view host, std::uint16_t port) {
  internal::require_c_string(host, "resolve host");
  const std::string name(host);
  try {
    return {SocketAddress::from_ip(name, port)};  // numeric: nothing to look up
  } catch (const std::invalid_argument&) {
  }
  return internal::run_blocking_as("resolve " + name, [name, port] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(name.c_str(), std::to_string(port).c_str(), &hints, &found);
    if (rc != 0) {
      if (rc == EAI_SYSTEM) {
        const int err = errno;  // before the message is built
        throw std::system_error(err, std::generic_category(), "resolve " + name);
      }
      throw std::system_error(rc, resolver_category(), "resolve " + name);
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);
    std::vector<SocketAddress> out;
    for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
      SocketAddress a(ai->ai_addr, ai->ai_addrlen);
      if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
    }
    if (out.empty()) {
      throw std::system_error(EAI_NONAME, resolver_category(), "resolve " + name);
    }
    return out;
  });
}

}  // namespace fiberloop
