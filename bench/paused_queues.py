"""What the paused-queue check costs a claim while no queue is paused.

Every claim leaves out paused queues (``NOT_PAUSED`` in each store's ``sql.py``: a constant
subquery over ``onward_queues``, usually empty). This times the claim statement itself, with
and without that check, on a backlog of ``--backlog`` ready jobs, one job per claim: each
claim runs in a transaction that is rolled back, so every repetition claims from the same
backlog. The two variants alternate call by call (the order flipping every call), and each
figure is the median of the ``--n`` timings of one claim, which a machine loaded by other
work disturbs much less than a total. ``--repeat`` rounds; their medians are reported.

Run: ``python -m bench.paused_queues [--backlog N] [--n N] [--repeat R] [--store sqlite|postgresql]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import onward
from bench.harness import PG_ADMIN_URL, postgres_unavailable
from onward import Job


class Noop(Job):
    def perform(self) -> None:
        return None


@contextmanager
def store_of(kind: str) -> Iterator[onward.Store]:
    """A new store of ``kind`` in a place of its own (a temporary file, a database named after this process)."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="onward-bench-paused-") as tmp:
            store = onward.connect(f"sqlite:///{tmp}/bench.sqlite3")
            try:
                yield store
            finally:
                store.close()
        return
    import psycopg

    name = f"onward_bench_paused_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    store = onward.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    try:
        yield store
    finally:
        store.close()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def claim_runners(store: onward.Store) -> dict[str, Callable[[], None]]:
    """One claim of one job, rolled back: with the paused-queue check, and without it."""
    if store.url.startswith("sqlite"):
        from onward.stores.sqlite import sql

        ready, params = sql.ready_seqs(None, time.time(), 1)
        conn: Any = store._conn()  # type: ignore[attr-defined]

        def sqlite_run(statement: str) -> Callable[[], None]:
            def run() -> None:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(statement, ("w", 30.0, time.time() + 30, time.time(), *params)).fetchall()
                conn.execute("ROLLBACK")

            return run

        with_check = sql.CLAIM.format(ready=ready)
        return {"checked": sqlite_run(with_check), "unchecked": sqlite_run(with_check.replace(sql.NOT_PAUSED, ""))}
    import psycopg

    from onward.stores.postgres import sql as pg_sql

    pg = psycopg.connect(store.url)

    def pg_run(statement: str) -> Callable[[], None]:
        def run() -> None:
            pg.execute(statement, ("w", 30.0, 30.0)).fetchall()
            pg.rollback()

        return run

    with_check = pg_sql.claim_sql("any", 1)
    return {"checked": pg_run(with_check), "unchecked": pg_run(with_check.replace(pg_sql.NOT_PAUSED, ""))}


def measure(kind: str, backlog: int, n: int, repeat: int) -> dict[str, float]:
    with store_of(kind) as store:
        for start in range(0, backlog, 5000):
            Noop.perform_all_later([() for _ in range(min(5000, backlog - start))])
        runs = claim_runners(store)
        for run in runs.values():  # warm up (plans, caches)
            for _ in range(200):
                run()
        rounds: dict[str, list[float]] = {name: [] for name in runs}
        order = list(runs.items())
        for _ in range(repeat):
            calls: dict[str, list[float]] = {name: [] for name in runs}
            for i in range(n):
                for name, run in order if i % 2 else reversed(order):
                    started = time.perf_counter()
                    run()
                    calls[name].append(time.perf_counter() - started)
            for name, timings in calls.items():
                rounds[name].append(statistics.median(timings) * 1e6)
    checked, unchecked = statistics.median(rounds["checked"]), statistics.median(rounds["unchecked"])
    return {"checked_us": checked, "unchecked_us": unchecked, "ratio": checked / unchecked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--n", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--store", choices=["sqlite", "postgresql"], action="append")
    args = parser.parse_args()
    for kind in args.store or ["sqlite", "postgresql"]:
        if kind == "postgresql" and (reason := postgres_unavailable()):
            print(f"{kind}: skipped ({reason})")
            continue
        figures = measure(kind, args.backlog, args.n, args.repeat)
        print(
            f"{kind}: claim of 1 job from a backlog of {args.backlog:,}, no queue paused:"
            f" {figures['checked_us']:.1f} us with the paused-queue check,"
            f" {figures['unchecked_us']:.1f} us without; ratio {figures['ratio']:.3f}"
        )


if __name__ == "__main__":
    main()
