"""The measurements of ``python -m bench``, one function per figure, each on a fresh store.

Every figure uses durable commits: SQLite in WAL mode with ``synchronous=NORMAL`` (the
default: survives a crash of any process), PostgreSQL with the server's
``synchronous_commit`` (``on`` by default). Workers are real ``onward worker`` processes.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.harness import ROOT, RawInserts, WorkerProcess, enqueued, fresh_store, sql, wait_until
from bench.jobs import Noop, StartedAt, TenChildren

CHUNK = 20_000


def enqueue_one_by_one(kind: str, n: int, reps: int = 5, slice_: int = 100) -> dict[str, Any]:
    """``perform_later`` called ``n`` times from one thread, one transaction each, beside what
    the disk allows one writer on the same store (:class:`bench.harness.RawInserts`): ``n``
    single-row ``INSERT`` + ``COMMIT`` of a row of similar width through the bare driver, and
    ``n`` of the jobs table's own ``INSERT`` sent the same bare way. Each repetition runs the
    three in turns of ``slice_`` calls (their order turning), so that all three see the same
    moments of a shared machine; rates are medians of ``reps`` repetitions, the ratio
    ``perform_later`` ÷ raw the median of the ratios paired within each (target: 0.80)."""
    with fresh_store(kind) as (store, url):
        raw = RawInserts(store, url)
        try:
            raw.prepare_jobs(n * reps + 20)
            for i in range(20):  # warm: connections, prepared statements
                Noop.perform_later(i)
                raw.one()
                raw.jobs_statement()

            def onward_calls(count: int) -> None:
                for i in range(count):
                    Noop.perform_later(i)

            def raw_rows(count: int) -> None:
                for _ in range(count):
                    raw.one()

            def bare_statements(count: int) -> None:
                for _ in range(count):
                    raw.jobs_statement()

            sides = {"perform_later": onward_calls, "raw": raw_rows, "jobs_statement": bare_statements}
            rates: dict[str, list[float]] = {name: [] for name in sides}
            order = list(sides)
            for _ in range(reps):
                spent = dict.fromkeys(sides, 0.0)
                for start in range(0, n, slice_):
                    count = min(slice_, n - start)
                    for name in order:
                        t = time.perf_counter()
                        sides[name](count)
                        spent[name] += time.perf_counter() - t
                    order = order[1:] + order[:1]
                for name, seconds in spent.items():
                    rates[name].append(n / seconds)
            durability = raw.durability
        finally:
            raw.close()
    ratios = [a / b for a, b in zip(rates["perform_later"], rates["raw"], strict=True)]
    to_statement = [a / b for a, b in zip(rates["perform_later"], rates["jobs_statement"], strict=True)]
    return {
        "jobs": n,
        "reps": reps,
        "per_s": statistics.median(rates["perform_later"]),
        "raw_per_s": statistics.median(rates["raw"]),
        "jobs_statement_per_s": statistics.median(rates["jobs_statement"]),
        "ratio": statistics.median(ratios),
        "target": 0.80,
        "ratio_to_jobs_statement": statistics.median(to_statement),
        "runs": rates,
        "ratios": ratios,
        "durability": durability,
        "load_average": os.getloadavg()[0],
    }


def enqueue_bulk(kind: str, n: int, repeat: int = 3) -> dict[str, Any]:
    """``perform_all_later`` with ``n`` jobs: one transaction; the median of ``repeat`` calls."""
    rates = []
    with fresh_store(kind):
        Noop.perform_all_later([(i,) for i in range(100)])
        for _ in range(repeat):
            calls = [(i,) for i in range(n)]
            t = time.perf_counter()
            Noop.perform_all_later(calls)
            rates.append(n / (time.perf_counter() - t))
    return {"jobs": n, "per_s": statistics.median(rates), "runs": rates}


def fill(n: int, job: Any = Noop) -> None:
    for start in range(0, n, CHUNK):
        job.perform_all_later([(i,) for i in range(start, min(n, start + CHUNK))])


def analyze(store: Any) -> None:
    """Fresh planner statistics, as autovacuum / a long-lived database would have, and (SQLite)
    the write-ahead log folded into the file, so that no figure pays for the fill's checkpoint."""
    if hasattr(store, "_exec"):
        sql(store, "ANALYZE")
        sql(store, "PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        sql(store, "ANALYZE onward_jobs")


def throughput(kind: str, n: int, concurrency: int = 2, processes: int = 1) -> dict[str, Any]:
    """``n`` queued no-op jobs run by one ``onward worker``: jobs per second, start-up excluded."""
    with fresh_store(kind) as (store, url):
        fill(n)
        analyze(store)
        with WorkerProcess(url, concurrency, processes) as worker:
            result = wait_until(store, n, worker)
        return {"jobs": n, "concurrency": concurrency, "processes": processes, **result}


def latency(kind: str, samples: int, idle: float = 0.1) -> dict[str, Any]:
    """Enqueue-to-start with an idle worker: the job returns its start time."""
    with fresh_store(kind) as (_store, url), WorkerProcess(url, 1) as worker:
        StartedAt.perform_later().wait(timeout=60)  # the worker is up
        values = []
        for i in range(samples + 5):
            time.sleep(idle)  # the worker goes back to waiting for work
            t = time.time()
            record = StartedAt.perform_later().wait(timeout=60)
            if i >= 5:
                values.append((float(record.result) - t) * 1000.0)
        values.sort()
        worker.stop()
    return {
        "samples": samples,
        "p50_ms": statistics.median(values),
        "p90_ms": values[int(0.9 * (len(values) - 1))],
        "max_ms": values[-1],
    }


def continuation_cost(kind: str, parents: int) -> dict[str, Any]:
    """``parents`` jobs each enqueuing 10 continuations on success, against the same number of
    jobs enqueued directly: what committing children with their parent costs."""
    total = parents * 11
    with fresh_store(kind) as (store, url):
        fill(total)
        analyze(store)
        with WorkerProcess(url) as worker:
            plain = wait_until(store, total, worker)
    with fresh_store(kind) as (store, url):
        fill(parents, TenChildren)
        analyze(store)
        with WorkerProcess(url) as worker:
            chained = wait_until(store, total, worker)
    return {
        "parents": parents,
        "jobs": total,
        "plain_per_s": plain["per_s"],
        "with_children_per_s": chained["per_s"],
        "ratio": chained["per_s"] / plain["per_s"],
    }


def backlog(kind: str, sizes: tuple[int, ...], measure: int, memory_jobs: int) -> dict[str, Any]:
    """Run ``measure`` jobs off the top of a queue of ``size + measure`` ready jobs, for each
    size; on the largest, keep going to ``memory_jobs`` and compare the worker's memory."""
    out: dict[str, Any] = {}
    for size in sizes:
        with fresh_store(kind) as (store, url):
            t = time.perf_counter()
            fill(size + max(measure, memory_jobs if size == max(sizes) else 0))
            fill_s = time.perf_counter() - t
            analyze(store)
            with WorkerProcess(url) as worker:
                rate = wait_until(store, measure, worker)
                entry: dict[str, Any] = {"queued": enqueued(store) + measure, "fill_s": fill_s, **rate}
                if size == max(sizes) and memory_jobs > measure:
                    early = measure
                    rss_early = worker.rss_kib()
                    wait_until(store, memory_jobs, worker)
                    rss_late = worker.rss_kib()
                    entry["memory"] = {
                        "after_jobs": [early, memory_jobs],
                        "rss_kib": [rss_early, rss_late],
                        "change": rss_late / rss_early - 1.0,
                    }
            out[str(size)] = entry
    small, large = out[str(min(sizes))], out[str(max(sizes))]
    out["ratio"] = large["per_s"] / small["per_s"]
    return out


def idle_rss(kind: str) -> dict[str, Any]:
    """Resident memory of a worker that has started and is waiting for work."""
    with fresh_store(kind) as (_, url), WorkerProcess(url, 2) as worker:
        StartedAt.perform_later().wait(timeout=60)
        time.sleep(1.0)  # settled: threads started, first claim done
        return {"rss_kib": worker.rss_kib(), "concurrency": 2}


def checkpoint_overhead(quick: bool) -> dict[str, Any] | None:
    """``bench/checkpoint_overhead.py`` (SQLite), when present."""
    if not os.path.exists(os.path.join(ROOT, "bench", "checkpoint_overhead.py")):
        return None
    argv = [sys.executable, "-m", "bench.checkpoint_overhead", "--json"]
    if quick:
        argv += ["--n", "200000", "--n-work", "20000", "--n-every-change", "5000", "--repeat", "3"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": done.stderr[-500:]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result
