// A reference model of the scheduling semantics the README states ("The
// model"; docs/ARCHITECTURE.md, "The life of a fiber"), written as a
// plain simulation with no fibers: a FIFO ready queue run in iterations (an
// iteration runs the fibers that were ready when it began, then timers
// expire), spawn without a switch, cancellation delivered at suspension
// points (at once to a parked fiber), joins, Events and Go-style channels.
#pragma once

#include "tests/model/program.h"

namespace fiberloop::model {

// The trace fiberloop must produce for `program` (see interpret.h).
Trace run_reference(const Program& program);

}  // namespace fiberloop::model
