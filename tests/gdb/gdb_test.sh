#!/usr/bin/env bash
# Runs gdb in batch mode on gdb_target, stopped while its fibers are parked:
# `fiberloop fibers` must list them, `fiberloop bt` must show the parked
# fiber's own frames; then the same on a kernel core dump of that moment,
# where the environment writes one. (gdb's own gcore cannot save the fiber
# stacks: reading a slab with MADV_GUARD_INSTALL guard pages in it fails, and
# gcore drops the whole section.)
set -euo pipefail
target="tests/gdb/gdb_target"
script="tools/gdb/fiberloop.py"
tmp="${TEST_TMPDIR:-/tmp}"

fail() {
  echo "gdb_test: FAILED: $1" >&2
  echo "---- gdb output ----" >&2
  cat "$2" >&2
  exit 1
}

live="$tmp/live.txt"
gdb -nx -batch \
  -ex "set pagination off" -ex "set confirm off" \
  -ex "break gdb_stop_here" -ex "run" \
  -ex "source $script" \
  -ex "fiberloop fibers" \
  -ex "fiberloop bt 2" \
  -ex "kill" \
  "$target" >"$live" 2>&1 || fail "gdb exited with an error" "$live"

grep -q "fibers alive" "$live" || fail "no fiber listing" "$live"
grep -Eq "fiber 2 'event-waiter' parked [0-9]+ ms: waiting on an Event 0x[0-9a-f]+ \(spawned at tests/gdb/gdb_target.cc:" "$live" ||
  fail "the event waiter is not listed as parked on an Event" "$live"
grep -Eq "fiber 3 'pipe-reader' parked [0-9]+ ms: reading fd [0-9]+ in wait_readable" "$live" ||
  fail "the pipe reader is not listed as reading its fd" "$live"
grep -q "fiber 1 running" "$live" || fail "the main fiber is not listed as running" "$live"
grep -q "^loop 1 on thread" "$live" || fail "the group's loop 1 is not listed with its index" "$live"
grep -Eq "'group-waiter' parked [0-9]+ ms: waiting on an Event" "$live" ||
  fail "the group's parked fiber is not listed" "$live"
grep -q "wait_in_a_named_function" "$live" || fail "fiberloop bt 2 does not show the fiber's frames" "$live"
grep -q "Event::wait" "$live" || fail "fiberloop bt 2 does not show where the fiber parked" "$live"

# A kernel core dump: where core_pattern names a file, it lands in the cwd.
target_abs="$PWD/$target"
script_abs="$PWD/$script"
mkdir -p "$tmp/cores"
(cd "$tmp/cores" && ulimit -c unlimited && "$target_abs" --abort) >/dev/null 2>&1 || true
cores=("$tmp"/cores/core*)
core=""
[ -e "${cores[0]}" ] && core="${cores[0]}"
if [ -n "$core" ]; then
  post="$tmp/core.txt"
  gdb -nx -batch -ex "source $script_abs" -ex "fiberloop fibers" -ex "fiberloop bt 2" \
    "$target_abs" "$core" >"$post" 2>&1 || fail "gdb on the core file exited with an error" "$post"
  grep -Eq "fiber 2 'event-waiter' parked [0-9]+ ms: waiting on an Event" "$post" ||
    fail "the core file's listing lacks the event waiter" "$post"
  grep -q "wait_in_a_named_function" "$post" || fail "no fiber backtrace from the core file" "$post"
  echo "gdb_test: live process and core file: ok"
else
  echo "gdb_test: live process: ok (this environment writes no core file: $(cat /proc/sys/kernel/core_pattern))"
fi
