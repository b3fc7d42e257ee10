#include "loop/internal/uring_poller.h"

#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <system_error>
#include <thread>

namespace fiberloop::internal {
namespace {

constexpr unsigned kEntries = 256;
// user_data of the requests that carry no Registration.
// Even: bit 0 marks a KernelOp, and a Registration's address is at least
// 8-aligned and far above them.
constexpr std::uint64_t kWakeToken = 2;    // the eventfd's multishot poll
constexpr std::uint64_t kIgnoreToken = 4;  // cancel and poll-remove requests' own completions
// A KernelOp's user_data is its address with this bit set (a
// Registration's is its address: both are aligned to at least 8).
constexpr std::uint64_t kOpBit = 1;

[[noreturn]] void throw_error(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

unsigned level_mask(Interest interest) {
  return (watches(interest, Interest::kRead) ? POLLIN : 0u) |
         (watches(interest, Interest::kWrite) ? POLLOUT : 0u);
}

}  // namespace

struct UringPoller::Ring {
  io_uring ring;
};

struct UringPoller::Registration {
  ReadinessTarget* target = nullptr;  // null once removed: no further report
  int fd = -1;
  unsigned mask = 0;
  bool in_kernel = false;     // a request is armed and its last completion not yet seen
  bool rearm_queued = false;  // in rearm_: armed again at the next wait()
  Registration* next_free = nullptr;
};

namespace {

// A free submission slot; submits what is queued if there is none.
io_uring_sqe* next_sqe(io_uring* ring) {
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  while (sqe == nullptr) {
    io_uring_submit(ring);
    sqe = io_uring_get_sqe(ring);
  }
  return sqe;
}

void arm_wake(io_uring* ring, int wake_fd) {
  io_uring_sqe* sqe = next_sqe(ring);
  io_uring_prep_poll_multishot(sqe, wake_fd, POLLIN);
  io_uring_sqe_set_data64(sqe, kWakeToken);
}

}  // namespace

UringPoller::UringPoller() : ring_(std::make_unique<Ring>()) {
  // Completions are made by task work on the loop's thread. By default the
  // kernel interrupts the thread for it at each event (an IPI per readiness
  // report: this halved echo throughput). Cooperative task work (Linux 5.19)
  // runs it at the thread's next syscall and flags it in the ring, which a
  // loop that is about to look for work checks. Deferred task work
  // (DEFER_TASKRUN, 6.1) measured the same on echo (0.97x vs 0.97x of the
  // plain epoll server, c=50) but lost readiness reports under the soak
  // test on Linux 6.18 (both loops parked on sockets the kernel held
  // readable), so it is not used. A kernel without cooperative task work
  // (before 5.19, which also brought cancelling every request at once, used
  // at the ring's end) gets epoll instead: io_uring measured at half of it.
  int err = io_uring_queue_init(kEntries, &ring_->ring,
                                IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
  // A ring's memory counts against RLIMIT_MEMLOCK (without CAP_IPC_LOCK,
  // as in a sandbox or a container), and the kernel gives a closed ring's
  // back later, from a worker: right after many loops ended, ENOMEM may
  // pass within milliseconds. Try again for up to about 100 ms.
  for (int delay_ms = 1; err == -ENOMEM && delay_ms <= 64; delay_ms *= 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    err = io_uring_queue_init(kEntries, &ring_->ring,
                              IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
  }
  if (err == -ENOMEM) {
    rlimit limit{};
    ::getrlimit(RLIMIT_MEMLOCK, &limit);
    throw_error(ENOMEM, "io_uring_queue_init (the rings' memory counts against RLIMIT_MEMLOCK, " +
                            std::to_string(limit.rlim_cur / 1024) +
                            " KiB here: raise it with ulimit -l, or choose Backend::epoll)");
  }
  if (err == -EINVAL) {
    throw_error(ENOSYS,
                "io_uring_queue_init: this kernel lacks cooperative task work "
                "(IORING_SETUP_COOP_TASKRUN, Linux 5.19 or later); choose Backend::epoll or "
                "Backend::automatic");
  }
  if (err < 0) throw_error(-err, "io_uring_queue_init");
  // Waits with a timeout need EXT_ARG (5.11); multishot poll, used for the
  // wake-up eventfd, came with 5.13: older kernels never accept the flags
  // above, so this is a check that a kernel reporting them is whole.
  const unsigned needed = IORING_FEAT_EXT_ARG | IORING_FEAT_RSRC_TAGS;
  if ((ring_->ring.features & needed) != needed) {
    io_uring_queue_exit(&ring_->ring);
    throw_error(ENOSYS,
                "io_uring on this kernel lacks waits with a timeout or resource tags "
                "(IORING_FEAT_EXT_ARG, IORING_FEAT_RSRC_TAGS: Linux 5.13 or later); choose "
                "Backend::epoll or Backend::automatic");
  }
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    const int saved = errno;
    io_uring_queue_exit(&ring_->ring);
    throw_error(saved, "fiberloop: eventfd");
  }
  arm_wake(&ring_->ring, wake_fd_);
  ready_.reserve(kEntries);
}

UringPoller::~UringPoller() {
  end_operations();
  io_uring_queue_exit(&ring_->ring);  // the kernel drops every request with it
  ::close(wake_fd_);
}

void UringPoller::end_operations() noexcept {
  // Operations still in the kernel now belong to fibers the loop's shutdown
  // abandoned (parked while unwinding, so never interrupted): their stacks
  // are leaked, so the memory stays valid. They are cancelled, and their
  // completions awaited for up to a second, so that nothing completes
  // after the loop has gone: an ACCEPT completing unseen would leave its
  // connection's fd open in the process for good.
  io_uring* ring = &ring_->ring;
  if (operations_ == 0) return;
  io_uring_sqe* sqe = next_sqe(ring);
  io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);  // (Linux 5.19)
  io_uring_sqe_set_data64(sqe, kIgnoreToken);
  for (int tries = 0; operations_ > 0 && tries < 100; ++tries) {
    __kernel_timespec ten_ms{0, 10'000'000};
    io_uring_cqe* cqe = nullptr;
    (void)io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ten_ms, nullptr);
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(ring, head, cqe) {
      ++seen;
      if ((cqe->user_data & kOpBit) == 0) continue;
      --operations_;
      const auto* op = reinterpret_cast<const KernelOp*>(cqe->user_data & ~kOpBit);
      if (op->kind == KernelOp::Kind::kAccept && cqe->res >= 0) ::close(cqe->res);
    }
    io_uring_cq_advance(ring, seen);
  }
}

void UringPoller::wake() noexcept {
  const std::uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop will wake anyway.
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

UringPoller::Registration* UringPoller::acquire(int fd, ReadinessTarget* target, unsigned mask) {
  if (fd < 0) throw_error(EBADF, "io_uring poll add fd " + std::to_string(fd));
  const auto slot = static_cast<std::size_t>(fd);
  if (slot < by_fd_.size() && by_fd_[slot] != nullptr) {
    throw_error(EEXIST, "io_uring poll add fd " + std::to_string(fd));
  }
  Registration* r = free_;
  if (r != nullptr) {
    free_ = r->next_free;
  } else {
    owned_.push_back(std::make_unique<Registration>());
    r = owned_.back().get();
  }
  *r = Registration{target, fd, mask};
  if (slot >= by_fd_.size()) by_fd_.resize(slot + 1, nullptr);
  by_fd_[slot] = r;
  ++registered_;
  return r;
}

void UringPoller::arm(Registration* r) {
  io_uring_sqe* sqe = next_sqe(&ring_->ring);
  io_uring_prep_poll_add(sqe, r->fd, r->mask);
  io_uring_sqe_set_data(sqe, r);
  r->in_kernel = true;
}

void UringPoller::release(Registration* r) noexcept {
  r->next_free = free_;
  free_ = r;
}

void UringPoller::add_edge_triggered(int fd, ReadinessTarget* target) {
  // Noted, not armed: a socket's waits are operations (submit()), so a
  // standing poll request would report each arrival a second time.
  acquire(fd, target, 0);
}

void UringPoller::add_level_triggered(int fd, ReadinessTarget* target, Interest interest) {
  arm(acquire(fd, target, level_mask(interest)));
}

void UringPoller::modify(int fd, ReadinessTarget* target, Interest interest) {
  remove(fd);
  add_level_triggered(fd, target, interest);
}

void UringPoller::remove(int fd) noexcept {
  const auto slot = static_cast<std::size_t>(fd);
  if (fd < 0 || slot >= by_fd_.size() || by_fd_[slot] == nullptr) return;
  Registration* r = by_fd_[slot];
  by_fd_[slot] = nullptr;
  --registered_;
  r->target = nullptr;
  if (r->in_kernel) {
    // Cancelled now, not at the next wait: the caller closes the fd next,
    // and the request holds a reference to the file until it has ended, so
    // the close would not reach the peer (no FIN, no RST). The request ends
    // in task work, run on the way out of this io_uring_enter. The
    // registration is recycled when its last completion is read.
    io_uring_sqe* sqe = next_sqe(&ring_->ring);
    io_uring_prep_poll_remove(sqe, reinterpret_cast<std::uint64_t>(r));
    io_uring_sqe_set_data64(sqe, kIgnoreToken);
    io_uring_submit_and_get_events(&ring_->ring);
  } else if (!r->rearm_queued) {
    release(r);
  }  // (else the next wait() recycles it)
}

bool UringPoller::submit(KernelOp& op) {
  io_uring_sqe* sqe = next_sqe(&ring_->ring);
  using Kind = KernelOp::Kind;
  switch (op.kind) {
    case Kind::kReadAt:
      io_uring_prep_read(sqe, op.fd, op.buffer, op.size, op.offset);
      break;
    case Kind::kWriteAt:
      io_uring_prep_write(sqe, op.fd, op.buffer, op.size, op.offset);
      break;
    case Kind::kRecv:
      io_uring_prep_recv(sqe, op.fd, op.buffer, op.size, 0);
      break;
    case Kind::kSend:
      io_uring_prep_send(sqe, op.fd, op.buffer, op.size, MSG_NOSIGNAL);
      break;
    case Kind::kSendMsg:
      io_uring_prep_sendmsg(sqe, op.fd, static_cast<const msghdr*>(op.buffer), MSG_NOSIGNAL);
      break;
    case Kind::kAccept:
      io_uring_prep_accept(sqe, op.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      break;
    case Kind::kPoll:
      io_uring_prep_poll_add(sqe, op.fd, op.size);
      break;
  }
  io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uint64_t>(&op) | kOpBit);
  ++operations_;
  return true;
}

void UringPoller::cancel(KernelOp& op) noexcept {
  io_uring_sqe* sqe = next_sqe(&ring_->ring);
  io_uring_prep_cancel64(sqe, reinterpret_cast<std::uint64_t>(&op) | kOpBit, 0);
  io_uring_sqe_set_data64(sqe, kIgnoreToken);
  // Now, with get-events: the cancelled request ends (and lets go of its
  // file) in task work run on the way out of this io_uring_enter.
  io_uring_submit_and_get_events(&ring_->ring);
}

void UringPoller::dispatch(Registration* r, int result) {
  r->in_kernel = false;        // one-shot: this was its only completion
  if (r->target == nullptr) {  // removed
    release(r);
    return;
  }
  if (result < 0) {
    // The kernel could not poll the fd (closed behind our back, say): both
    // directions retry their syscall and see why. Not armed again.
    ready_.push_back(Readiness{r->target, false, false, true});
    return;
  }
  const auto events = static_cast<unsigned>(result);
  ready_.push_back(Readiness{r->target, (events & POLLIN) != 0, (events & POLLOUT) != 0,
                             (events & (POLLERR | POLLHUP | POLLRDHUP)) != 0});
  // Armed again before the next wait, so an fd still ready reports again.
  r->rearm_queued = true;
  rearm_.push_back(r);
}

std::span<const Readiness> UringPoller::wait(std::optional<Duration> timeout) {
  io_uring* ring = &ring_->ring;
  for (Registration* r : rearm_) {
    r->rearm_queued = false;
    if (r->target != nullptr) {
      arm(r);
    } else if (!r->in_kernel) {
      release(r);
    }
  }
  rearm_.clear();
  // Only waits that may block are timed: the zero-timeout polls of a busy
  // loop skip the clock.
  const bool may_block = !timeout || *timeout > Duration::zero();
  const TimePoint start = may_block ? Clock::now() : TimePoint{};
  if (may_block) {
    __kernel_timespec ts{};
    __kernel_timespec* tsp = nullptr;
    if (timeout) {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*timeout).count();
      ts.tv_sec = ns / 1'000'000'000;
      ts.tv_nsec = ns % 1'000'000'000;
      tsp = &ts;
    }
    io_uring_cqe* cqe = nullptr;
    // Submits what this iteration queued and waits, in one io_uring_enter.
    const int err = io_uring_submit_and_wait_timeout(ring, &cqe, 1, tsp, nullptr);
    if (err == -EAGAIN) {
      // The kernel lacked memory for a request just now: nothing went in
      // and nothing was waited for. Waits for a completion (which frees
      // some), at most 1 ms, submitting nothing; what stays queued goes
      // with the next iteration's enter.
      __kernel_timespec one_ms{.tv_sec = 0, .tv_nsec = 1'000'000};
      (void)io_uring_wait_cqe_timeout(ring, &cqe, &one_ms);
    } else if (err < 0 && err != -ETIME && err != -EINTR && err != -EBUSY) {
      throw_error(-err, "fiberloop: io_uring_enter");
    }
    blocked_ += Clock::now() - start;
  } else if (io_uring_sq_ready(ring) != 0 || io_uring_cq_has_overflow(ring) ||
             (IO_URING_READ_ONCE(*ring->sq.kflags) & IORING_SQ_TASKRUN) != 0) {
    // Something to submit, or completions the kernel holds back (task work
    // pending, or an overflowed queue): one io_uring_enter. Else a busy
    // loop's look at the completion queue costs no syscall.
    io_uring_submit_and_get_events(ring);
  }
  ++polls_;
  ready_.clear();
  unsigned head;
  unsigned seen = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(ring, head, cqe) {
    ++seen;
    const bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    const std::uint64_t token = cqe->user_data;
    if (token == kWakeToken) {
      std::uint64_t count;
      while (::read(wake_fd_, &count, sizeof count) > 0) {
      }
      if (!more) arm_wake(ring, wake_fd_);
    } else if (token == kIgnoreToken) {
    } else if ((token & kOpBit) != 0) {
      auto* op = reinterpret_cast<KernelOp*>(token & ~kOpBit);
      --operations_;
      op->result = cqe->res;
      ready_.push_back(Readiness{op->target, true, false, false});
    } else {
      dispatch(reinterpret_cast<Registration*>(token), cqe->res);
    }
  }
  io_uring_cq_advance(ring, seen);
  return ready_;
}

}  // namespace fiberloop::internal
