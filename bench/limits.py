"""What limits cost: ``python -m bench.limits [--store sqlite|postgresql|all] [--reps 3]``.

For each store, ``--reps`` times, the runs interleaved (same machine, same load):

- **no limits**: ``--jobs`` no-op jobs run by one in-process worker (``--concurrency``
  threads, burst mode): jobs per second;
- **concurrency=2 over 1,000 keys**: the same number of no-op jobs of a class with
  ``concurrency = 2`` and ``limit_key`` spreading them over 1,000 keys: jobs per second, and the
  ratio to the run without limits (target: at least 0.80); and for both, the CPU per job of
  the worker's process plus the database server's processes serving it (PostgreSQL), which the
  machine's load moves far less than the rates (the ratio no limits / with limits);
- **claim cost**: microseconds per ``claim`` of one job without limits, with an empty queue
  ahead, then with 10,000 jobs of one key held back by ``concurrency = 1`` ahead of it (higher
  priority); the ratio (target: equal within noise).

Whether jobs without limits pay anything is measured against the build before limits with
``python -m bench.compare_builds --base REV --only throughput`` (see docs/benchmarks.md).
Durability as in ``bench/suite.py`` (the store's defaults).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import onward
from bench.harness import PG_ADMIN_URL, PG_DATABASE, fresh_store, postgres_unavailable
from bench.jobs import Noop, OneAtATime, TwoPerKey
from onward import stores

HELD = 10_000
ROUNDS = 40
BATCH = 25


def server_cpu() -> dict[int, float]:
    """CPU seconds used so far by each server process serving the benchmark's database."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (PG_DATABASE,))]
    used = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def run_jobs(kind: str, job: type[onward.Job], jobs: int, concurrency: int) -> tuple[float, float]:
    """Jobs per second of ``jobs`` no-op jobs of ``job`` on one burst worker, and the CPU
    microseconds per job of the worker's process plus (PostgreSQL) the server processes of its
    database: a figure the load of the machine moves far less than the rate."""
    with fresh_store(kind):
        job.perform_all_later([(i,) for i in range(jobs)])
        before = server_cpu() if kind == "postgresql" else {}
        cpu, started = time.process_time(), time.perf_counter()
        onward.Worker(queues=["bench"], concurrency=concurrency, lease_timeout=30).run(burst=True)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        after = server_cpu() if kind == "postgresql" else {}
        cpu += sum(used - before.get(pid, 0.0) for pid, used in after.items())
        return jobs / elapsed, 1e6 * cpu / jobs


@contextmanager
def two_stores(kind: str) -> Iterator[tuple[onward.Store, onward.Store]]:
    """Two new, empty stores of ``kind``, open side by side."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="onward-bench-") as tmp:
            a, b = onward.connect(f"sqlite:///{tmp}/a.sqlite3"), onward.connect(f"sqlite:///{tmp}/b.sqlite3")
            try:
                yield a, b
            finally:
                a.close()
                b.close()
        return
    import psycopg

    names = [f"{PG_DATABASE}_a", f"{PG_DATABASE}_b"]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    a, b = onward.connect(f"{base}/{names[0]}"), onward.connect(f"{base}/{names[1]}")
    try:
        yield a, b
    finally:
        a.close()
        b.close()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for name in names:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _fill(store: onward.Store, held: int, free: int) -> None:
    with stores.connected(store.url):
        if held:
            OneAtATime.set(priority=-1).perform_all_later([(i,) for i in range(held)])
            first = store.claim("bench", ["bench"], 30.0, 1)  # takes the key's slot, holds the rest
            assert len(first) == 1, first
            assert first[0].job_class.endswith(":OneAtATime"), first
        for start in range(0, free, 5000):
            Noop.perform_all_later([(i,) for i in range(start, min(free, start + 5000))])


def _claims(store: onward.Store, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        [claimed] = store.claim("bench", ["bench"], 30.0, 1)
        assert claimed.job_class.endswith(":Noop"), claimed
    return 1e6 * (time.perf_counter() - started) / count


def claim_costs(kind: str) -> tuple[float, float]:
    """Microseconds per claim of one job without limits: with an empty queue ahead, and with
    :data:`HELD` held jobs ahead; batches of claims alternate between the two stores, so that
    the load of the machine weighs on both alike (medians of the batches)."""
    with two_stores(kind) as (empty, held):
        _fill(empty, 0, ROUNDS * BATCH + 50)
        _fill(held, HELD, ROUNDS * BATCH + 50)
        _claims(empty, 50)  # warm up (statements prepared, caches filled)
        _claims(held, 50)
        times: tuple[list[float], list[float]] = ([], [])
        for _ in range(ROUNDS):
            times[0].append(_claims(empty, BATCH))
            times[1].append(_claims(held, BATCH))
        return statistics.median(times[0]), statistics.median(times[1])


def measure(kind: str, reps: int, jobs: int, concurrency: int) -> dict[str, Any]:
    runs: dict[str, list[float]] = {
        "no_limits": [],
        "two_per_key": [],
        "cpu_no_limits": [],
        "cpu_two_per_key": [],
        "claim_empty": [],
        "claim_held": [],
    }
    for _ in range(reps):
        for name, job in (("no_limits", Noop), ("two_per_key", TwoPerKey)):
            rate, cpu = run_jobs(kind, job, jobs, concurrency)
            runs[name].append(rate)
            runs[f"cpu_{name}"].append(cpu)
        empty, held = claim_costs(kind)
        runs["claim_empty"].append(empty)
        runs["claim_held"].append(held)
        print(f"[bench] {kind} limits: {json.dumps({k: round(v[-1], 1) for k, v in runs.items()})}", file=sys.stderr)
    keyed = [k / n for k, n in zip(runs["two_per_key"], runs["no_limits"], strict=True)]
    claims = [h / e for h, e in zip(runs["claim_held"], runs["claim_empty"], strict=True)]
    cpus = [n / k for k, n in zip(runs["cpu_two_per_key"], runs["cpu_no_limits"], strict=True)]
    return {
        "reps": reps,
        "no_limits_per_s": statistics.median(runs["no_limits"]),
        "two_per_key_per_s": statistics.median(runs["two_per_key"]),
        "two_per_key_ratio": statistics.median(keyed),
        "cpu_us_per_job_no_limits": statistics.median(runs["cpu_no_limits"]),
        "cpu_us_per_job_two_per_key": statistics.median(runs["cpu_two_per_key"]),
        "cpu_ratio": statistics.median(cpus),
        "claim_us_empty": statistics.median(runs["claim_empty"]),
        "claim_us_10000_held_ahead": statistics.median(runs["claim_held"]),
        "claim_ratio": statistics.median(claims),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", default="all", choices=["sqlite", "postgresql", "all"])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    onward.log_events.disable()
    kinds = ["sqlite", "postgresql"] if args.store == "all" else [args.store]
    results: dict[str, Any] = {}
    for kind in kinds:
        if kind == "postgresql" and (reason := postgres_unavailable()):
            print(f"[bench] postgresql skipped: {reason}", file=sys.stderr)
            continue
        results[kind] = found = measure(kind, args.reps, args.jobs, args.concurrency)
        print(
            f"{kind}: no limits {found['no_limits_per_s']:,.0f} jobs/s; concurrency=2 over 1,000 keys"
            f" {found['two_per_key_per_s']:,.0f} jobs/s (ratio {found['two_per_key_ratio']:.2f}, target >= 0.80);"
            f" CPU per job {found['cpu_us_per_job_no_limits']:,.0f} us without limits,"
            f" {found['cpu_us_per_job_two_per_key']:,.0f} us with (no limits / with: {found['cpu_ratio']:.2f});"
            f" claim {found['claim_us_empty']:,.0f} us with an empty queue ahead,"
            f" {found['claim_us_10000_held_ahead']:,.0f} us with {HELD:,} held jobs ahead"
            f" (ratio {found['claim_ratio']:.2f}, target 1 within noise)"
        )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
