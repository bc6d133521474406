"""Dashboard pages on a big table: the jobs list's first and deepest pages, with filters.

Fills a store with ``--jobs`` jobs (default 1,000,000; three queues, two classes, one job in
five discarded), then requests pages through the dashboard application in-process (no
network) and prints the median time of ``--repeat`` requests for each:

- ``/jobs`` and ``/api/jobs``, first page and a page among the oldest jobs (keyset paging
  with ``before``), unfiltered and filtered by state, queue and class;
- a job page, and the overview (its counts per queue and state read the whole table
  through an index, so they grow with it: the figure says by how much).

Run: ``python -m bench.dashboard_paging [--jobs N] [--url URL] [--repeat R] [--json]``
(``--url`` defaults to a new SQLite file; give ``postgresql://...`` of an empty database
to measure PostgreSQL: it runs ``ANALYZE`` after the fill, as autovacuum would).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from onward import serialization, stores
from onward.dashboard import create_app
from onward.job import new_id
from onward.stores.base import NewJob

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
    from starlette.testclient import TestClient

BATCH = 5000
CLASSES = ("bench.jobs:Import", "bench.jobs:Notify")


def fill(store: stores.Store, count: int) -> list[str]:
    """Insert ``count`` scheduled jobs in batches; returns the ids of the oldest 1,000."""
    empty_args, empty_kwargs = serialization.to_json([]), serialization.to_json({})
    oldest: list[str] = []
    done = 0
    started = time.perf_counter()
    while done < count:
        batch = [
            NewJob(
                id=new_id(),
                job_class=CLASSES[(done + i) % 2],
                queue=f"q{(done + i) % 3}",
                priority=0,
                args=empty_args,
                kwargs=empty_kwargs,
                max_attempts=3,
                delay=86_400.0,
            )
            for i in range(min(BATCH, count - done))
        ]
        store.enqueue(batch)
        if len(oldest) < 1000:
            oldest += [j.id for j in batch][: 1000 - len(oldest)]
        for job in batch[::5]:
            store.discard_job(job.id)
        done += len(batch)
        if done % 100_000 == 0:
            print(f"  {done:,} jobs ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    return oldest


def analyze(url: str) -> None:
    """Refresh PostgreSQL's planner statistics after the bulk fill, as autovacuum would on a
    server left to itself (without them the planner guesses, and may sort instead of paging
    through an index)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE onward_jobs")


def timed(client: TestClient, path: str, repeat: int) -> float:
    """Median milliseconds of ``repeat`` GETs of ``path`` (after one warm-up)."""
    assert client.get(path).status_code == 200, path
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(path)
        runs.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, path
    return statistics.median(runs)


def run(url: str, count: int, repeat: int) -> dict[str, Any]:
    store = stores.open_store(url)
    try:
        t0 = time.perf_counter()
        oldest = fill(store, count)
        fill_seconds = time.perf_counter() - t0
        if url.startswith(("postgresql:", "postgres:")):
            analyze(url)
        client = TestClient(create_app(store))
        deep = oldest[200]  # about 200 older jobs remain: a page among the oldest
        filters = {
            "none": "",
            "state=discarded": "state=discarded",
            "queue=q1": "queue=q1",
            "class": f"class={CLASSES[1]}",
            "state+queue": "state=enqueued&queue=q2",
        }
        figures: dict[str, float] = {}
        for name, query in filters.items():
            sep = "&" if query else ""
            figures[f"/jobs {name}, first page"] = timed(client, f"/jobs?{query}", repeat)
            figures[f"/jobs {name}, oldest page"] = timed(client, f"/jobs?{query}{sep}before={deep}", repeat)
            figures[f"/api/jobs {name}, oldest page"] = timed(client, f"/api/jobs?{query}{sep}before={deep}", repeat)
        figures["job page"] = timed(client, f"/jobs/{oldest[10]}", repeat)
        figures["overview (counts every job)"] = timed(client, "/", repeat)
        return {"url": store.url, "jobs": count, "fill_seconds": round(fill_seconds, 1), "median_ms": figures}
    finally:
        store.close()


def report(result: dict[str, Any]) -> str:
    lines = [
        f"{result['jobs']:,} jobs in {result['url']} (filled in {result['fill_seconds']} s); median per request:",
    ]
    width = max(len(k) for k in result["median_ms"])
    for name, ms in result["median_ms"].items():
        lines.append(f"  {name:<{width}}  {ms:8.1f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=1_000_000, help="jobs to insert (default 1,000,000)")
    parser.add_argument("--url", default=None, help="store URL of an empty store (default: a new SQLite file)")
    parser.add_argument("--repeat", type=int, default=5, help="requests per figure (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        result = run(url, args.jobs, args.repeat)
    print(json.dumps(result) if args.json else report(result), flush=True)


if __name__ == "__main__":
    main()
