"""What idle workers cost: N ``onward worker`` processes waiting on one PostgreSQL store.

    python -m bench.idle_workers --workers 16 --seconds 20

Starts ``--workers`` separate worker processes (one thread each, the default options) on a
fresh PostgreSQL database with no job, lets them settle, then reads from ``/proc`` the CPU
each worker process and the PostgreSQL server (every ``postgres`` process) use over
``--seconds``, as a share of one core (the server figure counts everything the server does
meanwhile: run it where nothing else uses that server). Then it enqueues one job at a time, ``--probes``
times, and reports the enqueue-to-start latency with all of them listening (no thundering
herd: one worker claims the job, the others stay asleep).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from bench.cpu_per_job import fresh_url, server_cpu
from bench.harness import ROOT


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--probes", type=int, default=20)
    args = parser.parse_args()

    import onward
    from bench.jobs import StartedAt

    url = fresh_url("postgresql", "")
    store = onward.connect(url)
    argv = [sys.executable, "-m", "onward", "worker", "--import", "bench.jobs", "--log-level", "WARNING",
            "--database-url", url]  # fmt: skip
    procs = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(args.workers)]  # fmt: skip
    try:
        time.sleep(5.0)  # start-up: imports, connections, the first reaper and scheduler rounds
        before = [_cpu_seconds(p.pid) for p in procs]
        server_before = server_cpu()
        time.sleep(args.seconds)
        used = [_cpu_seconds(p.pid) - b for p, b in zip(procs, before, strict=True)]
        server = server_cpu() - server_before
        shares = sorted(100 * u / args.seconds for u in used)
        print(
            f"{args.workers} idle workers over {args.seconds:.0f} s: each {statistics.median(shares):.2f}% of a core"
            f" (median; max {shares[-1]:.2f}%), PostgreSQL {100 * server / args.seconds:.2f}% of a core"
        )
        latencies = []
        for _ in range(args.probes):
            time.sleep(0.2)
            sent = time.time()
            handle = StartedAt.perform_later()
            latencies.append(1000 * (float(handle.wait(30).result) - sent))
        latencies.sort()
        print(
            f"enqueue-to-start with {args.workers} workers listening: p50 {statistics.median(latencies):.2f} ms,"
            f" max {latencies[-1]:.2f} ms over {args.probes} jobs"
        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        store.close()


if __name__ == "__main__":
    main()
