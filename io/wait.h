// Waiting for what the kernel signals: any fd's readiness (pipes, eventfds,
// a foreign library's sockets) and signals, as loop events.
//
//   fiberloop::wait_readable(pipe_fd);   // then read(2) will not block
//   spawn([&] { fiberloop::wait_signal({SIGINT, SIGTERM}); listener.close(); });
#pragma once

#include <initializer_list>

namespace fiberloop {

// Parks the calling fiber until `fd` is readable (or has hung up), or until
// the enclosing with_timeout() deadline. A duplicate of the fd is registered
// with the loop for this one wait (five syscalls: for fds fiberloop does not
// own; its own sockets wait without them), so the fd stays the caller's.
// Throws: Cancelled; TimeoutError; std::system_error naming the fd (EBADF if
//         it is not open, EPERM for one the kernel cannot poll: a regular
//         file, a directory, a device without poll support, on either
//         backend; read a file with read_file() or File); std::logic_error
//         outside a fiber.
void wait_readable(int fd);
// As wait_readable(), until `fd` is writable.
void wait_writable(int fd);

// Blocks `signals` for the calling thread (threads fiberloop starts block
// every signal already) and parks the calling fiber until one of them
// arrives, through a signalfd. Returns: the signal's number. The signals
// stay blocked afterwards, however the wait ends: one that arrives between
// two calls waits for the next call instead of taking its default action
// (a second Ctrl-C during a graceful shutdown ends nothing by itself).
// Each arrival goes to one waiter: two fibers waiting for the same signal
// take turns (Go's signal.Notify delivers to every channel; here, wait in
// one fiber and hand it on).
// Throws: std::invalid_argument for an empty list, a number that is not a
//         signal one can catch (SIGKILL, SIGSTOP, out of range), or one
//         fiberloop keeps (the fault signals SIGSEGV, SIGBUS, SIGFPE,
//         SIGILL, SIGTRAP, SIGSYS, and SIGURG), before blocking anything; std::system_error if the
//         signalfd cannot be made; Cancelled; TimeoutError; std::logic_error outside a fiber.
int wait_signal(std::initializer_list<int> signals);

}  // namespace fiberloop
