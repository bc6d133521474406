"""Enqueue-to-start latency on PostgreSQL, with an idle worker in another process.

A worker process (``onward worker``, concurrency 1) waits on ``LISTEN``. This process
enqueues one job at a time, pausing between jobs so that the worker is idle (asleep,
waiting for a notification) each time; the job records the time it started. Two latencies
are printed, both processes being on this machine so that their clocks agree:

- *from commit*: the job's start minus the moment ``perform_later`` returned (the job is
  committed and exists): the notification, the wake-up, the claim and the dispatch to a
  thread. This is the figure the target (under 10 ms) applies to.
- *from call*: the job's start minus the moment just before ``perform_later``, which adds the
  enqueue's own durable commit (a WAL flush: its cost is the storage's, and the caller pays
  it whatever the worker does).

With ``--throughput N`` it then also enqueues N trivial jobs at once and reports how many per
second a worker with ``--concurrency`` threads runs (``synchronous_commit`` as configured on
the server: ``on`` by default).

Run: ``python -m bench.pg_latency [--database-url URL] [--n 200] [--throughput 5000]``.
Without ``--database-url`` it creates (and drops) a database on
``postgresql://postgres@127.0.0.1:5432/postgres`` (``ONWARD_BENCH_POSTGRES_URL``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import onward
from onward import Job

TARGET_MS = 10.0
ADMIN_URL = os.environ.get("ONWARD_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Probe(Job):
    """Returns the wall-clock time at which it started."""

    def perform(self) -> float:
        return time.time()


class Trivial(Job):
    def perform(self, n: int) -> int:
        return n


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": round(statistics.median(values), 2),
        "p90": round(percentile(values, 90), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(max(values), 2),
    }


def start_worker(url: str, concurrency: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "onward", "worker", "--import", "bench.pg_latency", "--database-url", url]
    command += ["--concurrency", str(concurrency), "--log-level", "WARNING"]
    return subprocess.Popen(command, cwd=ROOT)


def measure_latency(url: str, n: int) -> tuple[list[float], list[float]]:
    """(from commit, from call) latencies in milliseconds."""
    worker = start_worker(url, 1)
    try:
        Probe.perform_later().wait(30)  # the worker is up and has imported everything
        from_commit, from_call = [], []
        for _ in range(n):
            time.sleep(random.uniform(0.05, 0.15))  # let the worker fall idle
            before = time.time()
            handle = Probe.perform_later()
            committed = time.time()
            started = float(handle.wait(30).result)
            from_commit.append((started - committed) * 1000)
            from_call.append((started - before) * 1000)
        return from_commit, from_call
    finally:
        worker.terminate()
        worker.wait(30)


def measure_throughput(store: onward.Store, url: str, jobs: int, concurrency: int) -> float:
    """Jobs per second from the worker's start until the last one succeeded (start-up included)."""
    Trivial.perform_all_later([(i,) for i in range(jobs)])
    t0 = time.perf_counter()
    worker = start_worker(url, concurrency)
    try:
        while any(c.state != "succeeded" for c in store.count_jobs()):
            time.sleep(0.005)
        return jobs / (time.perf_counter() - t0)
    finally:
        worker.terminate()
        worker.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--n", type=int, default=200, help="jobs enqueued one at a time (default 200)")
    parser.add_argument("--throughput", type=int, default=0, help="also run N jobs at once and report jobs/s")
    parser.add_argument("--concurrency", type=int, default=4, help="worker threads for --throughput")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    created = None
    url = args.database_url
    if url is None:
        import psycopg

        created = f"onward_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{created}"')
        url = urlunsplit(urlsplit(ADMIN_URL)._replace(path="/" + created))
    store = onward.connect(url)
    figures: dict[str, Any] = {}
    try:
        from_commit, from_call = measure_latency(url, args.n)
        figures = {
            "latency_from_commit_ms": summary(from_commit),
            "latency_from_call_ms": summary(from_call),
            "target_ms": TARGET_MS,
        }
        if args.throughput:
            figures["throughput_jobs_per_s"] = round(measure_throughput(store, url, args.throughput, args.concurrency))
            figures["throughput_concurrency"] = args.concurrency
    finally:
        store.close()
        if created is not None:
            import psycopg

            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"enqueue-to-start latency, idle worker in another process, {args.n} jobs:")
        for label, key in (("from commit", "latency_from_commit_ms"), ("from call  ", "latency_from_call_ms")):
            lat = figures[key]
            print(
                f"  {label}: median {lat['median']} ms   p90 {lat['p90']} ms   p99 {lat['p99']} ms"
                f"   max {lat['max']} ms"
            )
        verdict = "meets" if figures["latency_from_commit_ms"]["median"] < TARGET_MS else "MISSES"
        print(f"  {verdict} the target: median from commit under {TARGET_MS} ms")
        if "throughput_jobs_per_s" in figures:
            print(
                f"throughput: {figures['throughput_jobs_per_s']} jobs/s"
                f" (one worker process, concurrency {args.concurrency})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
