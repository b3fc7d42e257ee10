// The report's table: each operation it shows, fiberloop's benchmark for
// it, the target, and the peers measured in the same run.
#pragma once

#include <vector>

namespace fiberloop::bench {

struct Peer {
  const char* label;
  const char* bench;
};

struct Row {
  const char* operation;
  const char* bench;    // fiberloop's benchmark
  const char* counter;  // a counter to show instead of ns per item, or null
  const char* unit;
  const char* target;
  std::vector<Peer> peers;
};

// Every row, in the order the table and the chart show them.
const std::vector<Row>& rows();

}  // namespace fiberloop::bench
