#!/usr/bin/env python3
"""Requests per server CPU-second for servers run one after another.

  bench/per_cpu_second.py ROUNDS WORKLOAD CONNECTIONS name=command...

Each round starts every server in turn on a fresh port (the command gets
`--port N`; a leading `FIBERLOOP_BACKEND=...` goes to its environment),
drives it with `bazel-bin/bench/loadgen --workload WORKLOAD --connections
CONNECTIONS --seconds 3`, and reads the CPU time the server's threads used
from /proc. Prints each run, then each server's median and its ratio to the
first server's. Build first: ./bazelw build -c opt //bench:loadgen and the
servers.
"""
import os
import re
import shlex
import statistics
import subprocess
import sys
import time

LOADGEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bazel-bin", "bench",
                       "loadgen")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime, in ticks
    return total / TICK


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    rounds, workload, connections = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    servers = [arg.split("=", 1) for arg in sys.argv[4:]]
    figures = {name: [] for name, _ in servers}
    port = 7400
    for r in range(rounds):
        for name, command in servers:
            port += 1
            env = dict(os.environ)
            args = shlex.split(command)
            if args[0].startswith("FIBERLOOP_BACKEND="):
                key, value = args.pop(0).split("=", 1)
                env[key] = value
            server = subprocess.Popen(args + ["--port", str(port)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.4)  # listening by now
            before = cpu_seconds(server.pid)
            out = subprocess.run([LOADGEN, "--port", str(port), "--workload", workload,
                                  "--connections", connections, "--seconds", "3"],
                                 capture_output=True, text=True).stdout
            used = cpu_seconds(server.pid) - before
            server.kill()
            server.wait()
            found = re.search(r"(\d+) requests", out)
            requests = int(found.group(1)) if found else 0
            figures[name].append(requests / max(used, 1e-9))
            print(f"  round {r} {name}: {requests} requests, {used:.2f} CPU-s, "
                  f"{figures[name][-1]:.0f} per CPU-s", flush=True)
    base = statistics.median(figures[servers[0][0]])
    for name, _ in servers:
        median = statistics.median(figures[name])
        print(f"{name}: median {median:.0f} per CPU-s, ratio {median / base:.3f}")


if __name__ == "__main__":
    main()
