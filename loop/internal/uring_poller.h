// The io_uring backend of the Poller: readiness through io_uring poll
// requests instead of epoll, every request of a loop iteration submitted
// with its wait in one io_uring_enter(2). uring_poller.cc is the one file
// that includes <liburing.h>.
//
// A socket of io/ (add_edge_triggered) holds no request of its own: its
// fibers hand their reads, writes, accepts and waits to the kernel as
// operations (submit(): RECV, SEND, ACCEPT, a one-shot POLL), each
// completing once into the waiting fiber. A level-triggered fd (add_reader,
// add_writer) holds a one-shot request, re-armed after each report: an fd
// still ready reports again in the next wait, as epoll's level mode does.
// Each request carries a Registration of ours, not the target: remove()
// detaches the target at once, and the Registration is recycled only when
// the kernel's last completion for it has arrived, so a late completion
// never reaches a target that is gone.
#pragma once

#include <memory>
#include <vector>

#include "loop/internal/poller.h"

namespace fiberloop::internal {

class UringPoller final : public Poller {
 public:
  // Throws: std::system_error naming what the kernel refused
  // (io_uring_queue_init, eventfd).
  UringPoller();
  ~UringPoller() override;

  std::span<const Readiness> wait(std::optional<Duration> timeout) override;
  void wake() noexcept override;
  void add_edge_triggered(int fd, ReadinessTarget* target) override;
  void add_level_triggered(int fd, ReadinessTarget* target, Interest interest) override;
  void modify(int fd, ReadinessTarget* target, Interest interest) override;
  void remove(int fd) noexcept override;
  bool has_operations() const noexcept override { return true; }
  bool submit(KernelOp& op) override;
  void cancel(KernelOp& op) noexcept override;
  Backend backend() const noexcept override { return Backend::io_uring; }

 private:
  struct Ring;  // the liburing state (uring_poller.cc)
  struct Registration;

  Registration* acquire(int fd, ReadinessTarget* target, unsigned mask);
  void arm(Registration* r);
  void release(Registration* r) noexcept;
  void dispatch(Registration* r, int result);
  // Cancels the operations still in the kernel and waits for them (~).
  void end_operations() noexcept;

  std::unique_ptr<Ring> ring_;
  int wake_fd_ = -1;
  std::vector<Registration*> by_fd_;  // the live registration of each fd
  std::vector<Registration*> rearm_;  // level-triggered ones reported in the last wait
  Registration* free_ = nullptr;      // recycled registrations
  std::size_t operations_ = 0;        // submitted, completion not yet seen
  std::vector<std::unique_ptr<Registration>> owned_;
};

}  // namespace fiberloop::internal
