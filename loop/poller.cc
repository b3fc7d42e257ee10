// Which Poller a loop gets (make_poller) and the names of the backends.
#include "loop/internal/poller.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <system_error>

#include "loop/internal/epoll_poller.h"
#ifndef FIBERLOOP_NO_IO_URING  // (a CMake build without liburing)
#include "loop/internal/uring_poller.h"
#endif

namespace fiberloop {

const char* to_string(Backend backend) noexcept {
  switch (backend) {
    case Backend::automatic:
      return "automatic";
    case Backend::epoll:
      return "epoll";
    case Backend::io_uring:
      return "io_uring";
  }
  return "?";
}

namespace internal {
namespace {

// What FIBERLOOP_BACKEND asks for; automatic if unset. An unknown value is
// said once on stderr and ignored.
Backend from_environment() {
  const char* value = std::getenv("FIBERLOOP_BACKEND");
  if (value == nullptr || *value == '\0') return Backend::automatic;
  if (std::strcmp(value, "epoll") == 0) return Backend::epoll;
  if (std::strcmp(value, "io_uring") == 0) return Backend::io_uring;
  static std::once_flag said;
  std::call_once(said, [value] {
    std::fprintf(stderr, "fiberloop: FIBERLOOP_BACKEND=%s is neither epoll nor io_uring; ignored\n",
                 value);
  });
  return Backend::automatic;
}

std::unique_ptr<Poller> make_uring_poller() {
#ifdef FIBERLOOP_NO_IO_URING
  throw std::system_error(ENOSYS, std::generic_category(),
                          "io_uring backend: this fiberloop was built without liburing (install "
                          "Debian's liburing-dev and build fiberloop again)");
#else
  return std::make_unique<UringPoller>();
#endif
}

}  // namespace

std::unique_ptr<Poller> make_poller(Backend requested) {
  if (requested == Backend::epoll) return std::make_unique<EpollPoller>();
  if (requested == Backend::io_uring) return make_uring_poller();
  const Backend wanted = from_environment();
#ifdef FIBERLOOP_NO_IO_URING
  if (wanted == Backend::automatic) return std::make_unique<EpollPoller>();  // the build chose
#endif
  if (wanted == Backend::epoll) return std::make_unique<EpollPoller>();
  try {
    return make_uring_poller();
  } catch (const std::system_error& e) {
    static std::once_flag said;
    std::call_once(said, [&e, wanted] {
      if (wanted == Backend::io_uring) {
        std::fprintf(stderr, "fiberloop: FIBERLOOP_BACKEND=io_uring, but %s; using epoll\n",
                     e.what());
      } else {
        std::fprintf(stderr,
                     "fiberloop: io_uring is not available (%s); using epoll "
                     "(FIBERLOOP_BACKEND=epoll chooses it without this line)\n",
                     e.what());
      }
    });
  }
  return std::make_unique<EpollPoller>();
}

}  // namespace internal
}  // namespace fiberloop
