"""What idle workers cost: N ``onward worker`` processes waiting on one store with no job.

    python -m bench.idle_workers --workers 16 --seconds 20              # PostgreSQL
    python -m bench.idle_workers --store sqlite --workers 16 --seconds 20

Starts ``--workers`` separate worker processes (one thread each, the default options) on a
fresh database with no job, lets them settle (until none uses 1% of a core), then reads from
``/proc`` over ``--seconds`` the CPU each worker process uses (a share of one core) and how
often its threads were woken (voluntary context switches: independent of the machine's
load); on PostgreSQL also the CPU of the backends serving this benchmark's database (the
workers' connections) and of every ``postgres`` process (which counts whatever else uses
that server meanwhile), and the transactions per second the workers ask of it. Then it
enqueues one job at a time, ``--probes`` times, each after 0.2 s idle, and reports the
enqueue-to-start latency with all of them listening and, on PostgreSQL, the transactions
each job cost (a herd of workers all claiming on every ``NOTIFY`` shows here).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench.cpu_per_job import PG_ADMIN_URL, server_cpu
from bench.harness import ROOT

DATABASE = "onward_bench_idle"


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wakeups(pid: int) -> int:
    """Voluntary context switches so far of every thread of ``pid``: how often it slept and
    was woken (a load-independent measure of an idle process's cost)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def _backends_cpu(database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving ``database`` (by process title)."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read().decode("utf-8", "replace")
            if title.startswith("postgres:") and f" {database} " in title:
                found[int(pid)] = _cpu_seconds(int(pid))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _settled(procs: list[subprocess.Popen[bytes]]) -> list[float]:
    """Wait until the workers have started (imports, connections, the first reaper and
    scheduler rounds: under load, many seconds for 16 processes) and use next to no CPU: at
    least 5 s, then until a second passes in which they used under 1% of a core each (at
    most 60 s); returns the CPU seconds each has used so far."""
    time.sleep(5.0)
    last = [_cpu_seconds(p.pid) for p in procs]
    for _ in range(55):
        time.sleep(1.0)
        now = [_cpu_seconds(p.pid) for p in procs]
        if max(b - a for a, b in zip(last, now, strict=True)) < 0.01:
            return now
        last = now
    return last


def _transactions(database: str) -> int:
    """Transactions committed or rolled back so far in ``database`` (a load-independent
    measure of what the idle workers ask of the server)."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    return int(row[0]) if row else 0


def _fresh_url(store: str, tmp: str) -> str:
    if store == "sqlite":
        return f"sqlite:///{tmp}/idle.sqlite3"
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + DATABASE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--probes", type=int, default=20)
    args = parser.parse_args()

    import onward
    from bench.jobs import StartedAt

    with tempfile.TemporaryDirectory(prefix="onward-idle-") as tmp:
        url = _fresh_url(args.store, tmp)
        store = onward.connect(url)
        argv = [sys.executable, "-m", "onward", "worker", "--import", "bench.jobs", "--log-level", "WARNING",
                "--database-url", url]  # fmt: skip
        procs = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(args.workers)]  # fmt: skip
        try:
            before = _settled(procs)
            woken_before = [_wakeups(p.pid) for p in procs]
            pg = args.store == "postgresql"
            backends_before = _backends_cpu(DATABASE) if pg else {}
            server_before = server_cpu() if pg else 0.0
            xacts_before = _transactions(DATABASE) if pg else 0
            xacts = 0
            time.sleep(args.seconds)
            used = [_cpu_seconds(p.pid) - b for p, b in zip(procs, before, strict=True)]
            woken = [_wakeups(p.pid) - b for p, b in zip(procs, woken_before, strict=True)]
            shares = sorted(100 * u / args.seconds for u in used)
            line = (
                f"{args.workers} idle workers on {args.store} over {args.seconds:.0f} s: each"
                f" {statistics.median(shares):.2f}% of a core (median; max {shares[-1]:.2f}%),"
                f" woken {statistics.median(woken) / args.seconds:.1f} times a second (median, all its threads)"
            )
            if pg:
                server = server_cpu() - server_before
                xacts = _transactions(DATABASE) - xacts_before - 1  # (the first count's own)
                backends_after = _backends_cpu(DATABASE)
                ours = sum(backends_after[p] - backends_before.get(p, 0.0) for p in backends_after)
                line += (
                    f"; PostgreSQL: {100 * ours / args.seconds:.2f}% of a core for the {len(backends_after)}"
                    f" backends of this database, {100 * server / args.seconds:.2f}% for the whole server;"
                    f" {xacts / args.seconds:.1f} transactions/s in this database"
                )
            print(line, flush=True)
            latencies = []
            probes_from, xacts_from = time.monotonic(), _transactions(DATABASE) if pg else 0
            for _ in range(args.probes):
                time.sleep(0.2)
                sent = time.time()
                handle = StartedAt.perform_later()
                latencies.append(1000 * (float(handle.wait(30).result) - sent))
            latencies.sort()
            line = (
                f"enqueue-to-start with {args.workers} workers listening: p50 {statistics.median(latencies):.2f} ms,"
                f" max {latencies[-1]:.2f} ms over {args.probes} jobs"
            )
            if pg:  # what each job asks of the server, beyond what the idle workers ask anyway
                idle_rate = xacts / args.seconds
                spent = _transactions(DATABASE) - xacts_from - 1 - idle_rate * (time.monotonic() - probes_from)
                line += f"; {spent / args.probes:.1f} transactions per job (all of them, the enqueue included)"
            print(line)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)
            store.close()


if __name__ == "__main__":
    main()
