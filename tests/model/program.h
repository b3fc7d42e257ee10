// The operation language of the model-based scheduler test and its fuzzer: a
// program is a few fiber scripts; script 0 is the first fiber's, and a
// script may spawn only scripts numbered after its own, so every program
// ends. The ops cover spawn, yield, sleep, cancel, join, Event and Channel.
// The same program runs on fiberloop (interpret.h) and on a reference model
// of the scheduling semantics the README states (reference.h); their traces
// must be equal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fiberloop::model {

enum class OpKind : std::uint8_t {
  kYield,       // this_fiber::yield()
  kSleep,       // this_fiber::sleep_for(0): parks until the loop next expires timers
  kSpawn,       // spawn script `arg` (a later script); its Task becomes a child
  kJoin,        // join child `arg` (mod the children spawned so far)
  kCancel,      // cancel child `arg`
  kThrow,       // throw std::runtime_error: the fiber fails
  kEventSet,    // events[arg % kEvents].set()
  kEventClear,  // events[arg % kEvents].clear()
  kEventWait,   // events[arg % kEvents].wait()
  kSend,        // channels[arg % kChannels].send(a value naming fiber and op)
  kRecv,        // channels[arg % kChannels].recv()
  kClose,       // channels[arg % kChannels].close()
};
inline constexpr int kOpKinds = 12;

inline constexpr int kEvents = 2;
inline constexpr int kChannels = 2;  // channel 0 is unbuffered, channel 1 holds 2
inline constexpr std::size_t kChannelCapacity[kChannels] = {0, 2};
inline constexpr int kMaxFibers = 24;  // further spawns are skipped (and traced)
inline constexpr int kMaxScripts = 5;
inline constexpr int kMaxOps = 16;  // per script

struct Op {
  OpKind kind;
  std::uint8_t arg;
};

struct Program {
  std::vector<std::vector<Op>> scripts;
};

// A random program, the same for the same seed on every platform.
Program random_program(std::uint64_t seed);

// A program read from arbitrary bytes (the fuzzer's input); never fails.
Program decode_program(const std::uint8_t* data, std::size_t size);

// The program as bytes decode_program() reads back (for seeding a corpus).
std::vector<std::uint8_t> encode_program(const Program& program);

// Readable listing, for failure messages.
std::string to_string(const Program& program);

// The events both sides record, one line each, e.g. "f2.3 recv 104".
using Trace = std::vector<std::string>;

// The value fiber `fiber` sends at op `pc`.
inline int sent_value(int fiber, int pc) { return fiber * 100 + pc; }

}  // namespace fiberloop::model
