#!/usr/bin/env python3
"""tests/bench_time.py -- the benchmark's stopwatch (used by tests/bench.sh).

    bench_time.py REPS WARMUP  OUT1 CMD1... ';;' OUT2 CMD2... ';;' ...

Runs the commands in turn (interleaved, so a slow phase of the machine hits all of
them alike; every other round in reverse order, so none always runs first), WARMUP
untimed rounds then REPS timed ones, and appends each run's wall time in microseconds,
one per line, to OUTn (line i of every OUT is round i: they can be paired). Each run is posix_spawn + waitpid timed
with a monotonic clock: no shell and no `date` processes in the measurement. A
command that fails stops the benchmark (exit 1).
"""
import os
import sys
import time


def main():
    reps, warmup = int(sys.argv[1]), int(sys.argv[2])
    groups, cur = [], []
    for arg in sys.argv[3:]:
        if arg == ";;":
            groups.append(cur)
            cur = []
        else:
            cur.append(arg)
    groups.append(cur)
    null = os.open(os.devnull, os.O_WRONLY)
    outs = [open(g[0], "a") for g in groups]
    for round_ in range(warmup + reps):
        pairs = list(zip(outs, groups))
        for out, g in pairs if round_ % 2 == 0 else reversed(pairs):
            cmd = g[1:]
            t0 = time.perf_counter_ns()
            pid = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, null, 1)])
            _, status = os.waitpid(pid, 0)
            t1 = time.perf_counter_ns()
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit(f"bench_time: {' '.join(cmd)} failed ({os.waitstatus_to_exitcode(status)})")
            if round_ >= warmup:
                out.write(f"{(t1 - t0) // 1000}\n")
    for out in outs:
        out.close()


if __name__ == "__main__":
    main()
