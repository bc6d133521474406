"""What the batch trigger costs jobs without a batch, on PostgreSQL:
``python -m bench.batch_trigger [--rows 20000] [--reps 10]``.

On a fresh database: ``--rows`` running jobs without a batch are marked succeeded, 500 per
``UPDATE`` (the shape of the worker's batched completion), with the trigger that moves batch
counters enabled, then disabled, alternately ``--reps`` times. Printed: each time and the
median ratio enabled / disabled (1.0: no cost).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import psycopg

import onward
from bench.harness import PG_ADMIN_URL, postgres_unavailable

DATABASE = "onward_bench_batch_trigger"
PER_STATEMENT = 500


def mark_succeeded(conn: psycopg.Connection[Any], rows: int) -> float:
    conn.execute("TRUNCATE onward_jobs")
    conn.execute(
        "INSERT INTO onward_jobs (id, job_class, queue, priority, args, kwargs, state, max_attempts, scheduled_at,"
        " enqueued_at) SELECT 'j' || g, 'bench:Noop', 'bench', 0, '[]', '{}', 'running', 3, now(), now()"
        " FROM generate_series(1, %s) AS g",
        (rows,),
    )
    first = conn.execute("SELECT min(seq) FROM onward_jobs").fetchone()[0]  # type: ignore[index]
    start = time.perf_counter()
    for offset in range(0, rows, PER_STATEMENT):
        conn.execute(
            "UPDATE onward_jobs SET state = 'succeeded', finished_at = now() WHERE seq >= %s AND seq < %s",
            (first + offset, first + offset + PER_STATEMENT),
        )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args(argv)
    if why := postgres_unavailable():
        print(f"postgresql: skipped, {why}")
        return 0
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + DATABASE
    try:
        onward.connect(url).close()  # creates the schema
        enabled, disabled = [], []
        with psycopg.connect(url, autocommit=True) as conn:
            for _ in range(args.reps):
                enabled.append(mark_succeeded(conn, args.rows))
                conn.execute("ALTER TABLE onward_jobs DISABLE TRIGGER onward_batch_member")
                disabled.append(mark_succeeded(conn, args.rows))
                conn.execute("ALTER TABLE onward_jobs ENABLE TRIGGER onward_batch_member")
        print("enabled (s): ", " ".join(f"{t:.3f}" for t in enabled))
        print("disabled (s):", " ".join(f"{t:.3f}" for t in disabled))
        ratio = statistics.median(a / b for a, b in zip(enabled, disabled, strict=True))
        print(f"median ratio enabled / disabled: {ratio:.2f} (1.00: no cost)")
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
