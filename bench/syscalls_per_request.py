#!/usr/bin/env python3
"""Counts the system calls each network server makes per request.

The same servers and load generator as the report's one-core table: the
server pinned to CPU 0, bench/loadgen to CPU 1. `perf stat` counts the
server's syscall entries by tracepoint while the load runs; the table gives
them per request (per connection for churn), by call. The tracepoints slow
the server, so the CPU split per request comes from the report (its one-core
table), not from here.

Needs `perf` with the syscalls:* tracepoints (root, or perf_event_paranoid
<= -1) and the -c opt binaries:

  ./bazelw build -c opt //bench:all //examples:echo_server //examples:http_hello
  python3 bench/syscalls_per_request.py [--seconds 2] [--rounds 3]
"""

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import time

CALLS = ["read", "recvfrom", "write", "sendto", "sendmsg", "writev", "epoll_wait",
         "epoll_pwait", "epoll_pwait2", "epoll_ctl", "io_uring_enter", "accept4", "close",
         "shutdown"]
WORKLOADS = [("echo", 50), ("echo", 1000), ("http", 50), ("http", 1000), ("churn", 50)]


def servers(workload):
    mode = "http" if workload == "http" else "echo"
    ours = "bazel-bin/examples/" + ("http_hello" if mode == "http" else "echo_server")
    return [
        ("plain epoll", ["bazel-bin/bench/epoll_server", "--mode", mode], "epoll"),
        ("fiberloop epoll", [ours, "--loops", "1"], "epoll"),
        ("plain io_uring", ["bazel-bin/bench/uring_server", "--mode", mode], "io_uring"),
        ("fiberloop io_uring", [ours, "--loops", "1"], "io_uring"),
    ]


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def run_one(argv, backend, workload, connections, port, seconds):
    env = dict(os.environ, FIBERLOOP_BACKEND=backend)
    server = subprocess.Popen(["taskset", "-c", "0"] + argv + ["--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    perf = None
    err = ""
    try:
        for _ in range(500):
            if accepts(port):
                break
            time.sleep(0.01)
        events = ",".join(f"syscalls:sys_enter_{c}" for c in CALLS) + ",raw_syscalls:sys_enter"
        perf = subprocess.Popen(["perf", "stat", "-x,", "-e", events, "-p", str(server.pid)],
                                stderr=subprocess.PIPE, text=True)
        time.sleep(0.2)  # perf attaches
        load = subprocess.run(["taskset", "-c", "1", "bazel-bin/bench/loadgen", "--port",
                               str(port), "--workload", workload, "--connections",
                               str(connections), "--seconds", str(seconds)],
                              capture_output=True, text=True, check=True)
    finally:
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            _, err = perf.communicate()
        server.send_signal(signal.SIGTERM)
        server.wait()
    # (perf stat exits non-zero when SIGINT ends it; its counts say whether it counted.)
    if not re.search(r"^\d+,,raw_syscalls:sys_enter,", err, re.M):
        raise SystemExit(f"perf stat failed (tracepoints missing, or no permission):\n{err}")
    requests = int(re.search(r"(\d+) requests", load.stdout).group(1))
    if requests == 0:
        raise SystemExit(f"{argv[0]}: no requests completed")
    counts = {}
    for line in err.splitlines():
        parts = line.split(",")
        if len(parts) > 2 and parts[0].isdigit():
            name = parts[2].split(":")[1].replace("sys_enter_", "")
            counts["all" if name == "sys_enter" else name] = int(parts[0])
    # The counts cover perf's whole attachment (0.2 s idle, then the load):
    # an idle server makes no calls, so they divide by the load's requests.
    return {k: v / requests for k, v in counts.items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = 20000 + os.getpid() % 10000
    print(f"Per request, medians of {args.rounds} rounds of {args.seconds:g} s; "
          "server on CPU 0, bench/loadgen on CPU 1\n")
    print("| workload | server | syscalls | by call |")
    print("| --- | --- | --- | --- |")
    for workload, connections in WORKLOADS:
        rows = servers(workload)
        samples = {label: [] for label, _, _ in rows}
        for r in range(args.rounds):
            for k in range(len(rows)):
                label, argv, backend = rows[(k + r) % len(rows)]
                port += 1
                samples[label].append(
                    run_one(argv, backend, workload, connections, port, args.seconds))
        for label, _, _ in rows:
            med = {key: statistics.median(s.get(key, 0) for s in samples[label])
                   for key in samples[label][0]}
            calls = ", ".join(f"{c} {med[c]:.2f}" for c in CALLS if med.get(c, 0) >= 0.01)
            print(f"| {workload} c={connections} | {label} | {med.get('all', 0):.2f} | {calls} |",
                  flush=True)


if __name__ == "__main__":
    main()
