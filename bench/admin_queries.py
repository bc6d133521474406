"""Operator queries on a big store: what ``onward jobs``, ``show``, ``stats`` and the
dashboard cost when the store holds ``--rows`` jobs (default 1,000,000).

The store is filled through ``Store.enqueue`` in batches; then 95% of the jobs are marked
finished (succeeded, some failed) over the last hour, as on a busy production store. Each
figure is the median of ``--repeat`` runs, in milliseconds:

- the first page of ``jobs`` (newest 50), and a page deep in the history reached by keyset
  paging (``before``), unfiltered and filtered by state, queue and class;
- an id-prefix search, and a job detail with its chain;
- counts per queue and state, and jobs finished per minute over 15 minutes;
- one purge batch of 1000 jobs.

Run: ``python -m bench.admin_queries [--rows N] [--repeat R] [--database-url URL] [--json]``
(by default a temporary SQLite file).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from onward import stores
from onward.admin import Admin
from onward.job import new_id
from onward.stores.base import NewJob, Store

QUEUES = ("default", "mailers", "imports", "metrics")
CLASSES = ("app.jobs:SendWelcomeEmail", "app.jobs:ProcessImport", "app.jobs:NotifyAdmin", "app.jobs:Report")
BATCH = 10_000


def fill(store: Store, rows: int) -> None:
    for start in range(0, rows, BATCH):
        jobs = [
            NewJob(
                id=new_id(),
                job_class=CLASSES[i % len(CLASSES)],
                queue=QUEUES[i % len(QUEUES)],
                priority=0,
                args=f"[{i}]",
                kwargs="{}",
                max_attempts=3,
            )
            for i in range(start, min(rows, start + BATCH))
        ]
        store.enqueue(jobs)


def finish_most(url: str, rows: int) -> None:
    """Mark 95% of the jobs finished during the last hour (5% of those failed)."""
    now = time.time()
    if url.startswith("sqlite"):
        import sqlite3

        path = url[len("sqlite:///") :]
        conn = sqlite3.connect(path if path.startswith("/") else os.path.abspath(path))
        conn.execute(
            "UPDATE onward_jobs SET state = CASE WHEN seq % 20 = 1 THEN 'failed' ELSE 'succeeded' END,"
            " attempts = 1, started_at = ? - 3600.0 * seq / ?, finished_at = ? - 3600.0 * (? - seq) / ?"
            " WHERE seq % 20 != 0",
            (now, rows, now, rows, rows),
        )
        conn.commit()
        conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "WITH numbered AS (SELECT id, row_number() OVER (ORDER BY enqueued_at, id) AS n FROM onward_jobs)"
            " UPDATE onward_jobs j SET state = CASE WHEN n % 20 = 1 THEN 'failed' ELSE 'succeeded' END,"
            " attempts = 1, started_at = to_timestamp(%(now)s - 3600.0 * (%(rows)s - n) / %(rows)s),"
            " finished_at = to_timestamp(%(now)s - 3600.0 * (%(rows)s - n) / %(rows)s)"
            " FROM numbered WHERE j.id = numbered.id AND n % 20 != 0",
            {"now": now, "rows": rows},
        )


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def deep_cursor(admin: Admin, pages: int, **filters: Any) -> str | None:
    """The ``before`` id ``pages`` pages of 1000 into the history."""
    before = None
    for _ in range(pages):
        page = admin.jobs(limit=1000, before=before, **filters)
        if page.next is None:
            break
        before = page.next
    return before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database-url", default=None, help="an empty store (default: a temporary SQLite file)")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    url = options.database_url or f"sqlite:///{tmp.name}/admin.sqlite3"
    store = stores.open_store(url)
    started = time.perf_counter()
    fill(store, options.rows)
    finish_most(url, options.rows)
    fill_seconds = time.perf_counter() - started
    admin = Admin(store)
    repeat = options.repeat
    newest = admin.jobs(limit=1).jobs[0]
    deep = deep_cursor(admin, 20)
    deep_failed = deep_cursor(admin, 2, state="failed")
    figures = {
        "jobs, first page": median_ms(lambda: admin.jobs(limit=50), repeat),
        "jobs, page after 20,000 (keyset)": median_ms(lambda: admin.jobs(limit=50, before=deep), repeat),
        "jobs --state failed, first page": median_ms(lambda: admin.jobs(state="failed", limit=50), repeat),
        "jobs --state failed, page after 2,000": median_ms(
            lambda: admin.jobs(state="failed", limit=50, before=deep_failed), repeat
        ),
        "jobs --queue mailers": median_ms(lambda: admin.jobs(queue="mailers", limit=50), repeat),
        "jobs --class ...:Report": median_ms(lambda: admin.jobs(job_class=CLASSES[3], limit=50), repeat),
        "jobs --state enqueued --queue metrics": median_ms(
            lambda: admin.jobs(state="enqueued", queue="metrics", limit=50), repeat
        ),
        "search by id prefix": median_ms(lambda: admin.jobs(search=newest.id[:13], limit=50), repeat),
        "show (detail and chain)": median_ms(lambda: admin.job(newest.id), repeat),
        "counts per queue and state": median_ms(admin.counts, repeat),
        "finished per minute, 15 min": median_ms(lambda: admin.throughput(15), repeat),
        "purge, one batch of 1000": median_ms(lambda: store.purge_finished(["succeeded"], time.time(), 1000), repeat),
    }
    store.close()
    tmp.cleanup()
    if options.json:
        print(json.dumps({"rows": options.rows, "store": url.split(":")[0], "ms": figures}, indent=2))
        return
    print(f"{options.rows:,} jobs in {url.split(':')[0]} (filled in {fill_seconds:.0f} s); median of {repeat} runs")
    for name, ms in figures.items():
        print(f"  {name:<42} {ms:9.2f} ms")


if __name__ == "__main__":
    main()
