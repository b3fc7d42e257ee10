#include "tests/model/program.h"

#include <random>

namespace fiberloop::model {
namespace {

const char* name_of(OpKind kind) {
  switch (kind) {
    case OpKind::kYield:
      return "yield";
    case OpKind::kSleep:
      return "sleep";
    case OpKind::kSpawn:
      return "spawn";
    case OpKind::kJoin:
      return "join";
    case OpKind::kCancel:
      return "cancel";
    case OpKind::kThrow:
      return "throw";
    case OpKind::kEventSet:
      return "event.set";
    case OpKind::kEventClear:
      return "event.clear";
    case OpKind::kEventWait:
      return "event.wait";
    case OpKind::kSend:
      return "send";
    case OpKind::kRecv:
      return "recv";
    case OpKind::kClose:
      return "close";
  }
  return "?";
}

// A spawn in the last script has nothing to spawn: it becomes a yield.
Op normalized(Op op, std::size_t script, std::size_t scripts) {
  if (op.kind == OpKind::kSpawn) {
    const std::size_t later = scripts - script - 1;
    if (later == 0) return Op{OpKind::kYield, 0};
    op.arg = static_cast<std::uint8_t>(script + 1 + op.arg % later);
  }
  return op;
}

}  // namespace

Program random_program(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto below = [&](std::uint64_t n) { return static_cast<int>(rng() % n); };
  Program p;
  const int scripts = 1 + below(kMaxScripts);
  p.scripts.resize(scripts);
  for (int s = 0; s < scripts; ++s) {
    const int ops = 1 + below(s == 0 ? kMaxOps : 10);
    for (int i = 0; i < ops; ++i) {
      // Spawns weigh more in the first script, so most programs have company.
      OpKind kind = static_cast<OpKind>(below(kOpKinds));
      if (s == 0 && below(3) == 0) kind = OpKind::kSpawn;
      if (kind == OpKind::kThrow && below(2) == 0) kind = OpKind::kYield;  // fewer early ends
      p.scripts[s].push_back(normalized(Op{kind, static_cast<std::uint8_t>(below(256))}, s,
                                        static_cast<std::size_t>(scripts)));
    }
  }
  return p;
}

// Byte 0: the number of scripts. Then two bytes per op (kind, argument); a
// kind byte of 255 ends the current script.
Program decode_program(const std::uint8_t* data, std::size_t size) {
  Program p;
  if (size == 0) return p;
  const std::size_t scripts = 1 + data[0] % kMaxScripts;
  p.scripts.resize(scripts);
  std::size_t s = 0;
  std::size_t i = 1;
  while (i < size && s < scripts) {
    if (data[i] == 255) {  // end of script: one byte
      ++s;
      ++i;
      continue;
    }
    if (i + 1 >= size) break;
    const Op op{static_cast<OpKind>(data[i] % kOpKinds), data[i + 1]};
    if (p.scripts[s].size() < kMaxOps) p.scripts[s].push_back(normalized(op, s, scripts));
    i += 2;
  }
  return p;
}

std::vector<std::uint8_t> encode_program(const Program& program) {
  std::vector<std::uint8_t> out{static_cast<std::uint8_t>(program.scripts.size() - 1)};
  for (std::size_t s = 0; s < program.scripts.size(); ++s) {
    for (const Op& op : program.scripts[s]) {
      out.push_back(static_cast<std::uint8_t>(op.kind));
      // decode_program() reads a spawn's argument as "the n-th later script".
      out.push_back(op.kind == OpKind::kSpawn ? static_cast<std::uint8_t>(op.arg - s - 1) : op.arg);
    }
    out.push_back(255);
  }
  return out;
}

std::string to_string(const Program& program) {
  std::string out;
  for (std::size_t s = 0; s < program.scripts.size(); ++s) {
    out += "script " + std::to_string(s) + ":";
    for (const Op& op : program.scripts[s]) {
      out += ' ';
      out += name_of(op.kind);
      if (op.kind != OpKind::kYield && op.kind != OpKind::kSleep && op.kind != OpKind::kThrow)
        out += '(' + std::to_string(op.arg) + ')';
    }
    out += '\n';
  }
  return out;
}

}  // namespace fiberloop::model
