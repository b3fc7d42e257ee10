// Runs a program of the model's operation language on fiberloop: a Loop,
// one fiber per spawned script, real Events and Channels.
#pragma once

#include "tests/model/program.h"

namespace fiberloop::model {

// Runs `program` on a fresh Loop until nothing can progress, drops every
// Task, destroys the Loop (which cancels what is left), and returns the
// trace of what happened, in order.
Trace run_on_fiberloop(const Program& program);

// Runs both and describes the first difference; empty when they agree.
std::string compare_with_reference(const Program& program);

}  // namespace fiberloop::model
