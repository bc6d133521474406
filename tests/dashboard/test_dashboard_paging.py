"""The jobs list's keyset paging stays fast on a big table (SQLite): each page is read
through an index, and the work per page does not grow with the table or with the page's
depth. Work is counted in SQLite virtual-machine steps, not timed; ``bench/dashboard_paging.py``
prints timings on a million jobs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dashboard_jobs as dj
import pytest
from dashboard_helpers import TestClient

import onward
from onward import stores
from onward.admin import Admin
from onward.dashboard import create_app
from onward.testing import drain

FILTERS: list[dict[str, str]] = [
    {},
    {"state": "discarded"},
    {"queue": "q1"},
    {"class": "dashboard_jobs:Later"},
    {"state": "enqueued", "queue": "q2"},
]


def add_jobs(store: onward.Store, count: int) -> list[str]:
    """``count`` jobs over three queues and two classes, every fifth one discarded."""
    ids = []
    for i in range(count):
        cls = dj.Later if i % 2 else dj.Quick
        ids.append(cls.set(wait=3600, queue=f"q{i % 3}").perform_later().id)
    ops = Admin(store)
    for job_id in ids[::5]:
        ops.discard(job_id)
    return ids


class Meter:
    """Counts the VM steps of, and records, the statements run on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.steps = 0
        self.statements: list[str] = []

    def _tick(self) -> int:
        self.steps += 1
        return 0

    @contextmanager
    def measure(self) -> Iterator[None]:
        self.steps, self.statements = 0, []
        self.conn.set_trace_callback(self.statements.append)
        self.conn.set_progress_handler(self._tick, 1)
        try:
            yield
        finally:
            self.conn.set_progress_handler(None, 1)
            self.conn.set_trace_callback(None)

    def plan(self, sql: str) -> list[str]:
        return [row[3] for row in self.conn.execute("EXPLAIN QUERY PLAN " + sql)]


@pytest.fixture
def meter(sqlite_store: Any) -> Meter:
    # The connection the store uses in this thread (the store keeps one per thread), so the
    # test sees exactly the statements the dashboard's listing runs.
    return Meter(sqlite_store._conn())


def page_cost(meter: Meter, ops: Admin, query: dict[str, str], before: str | None) -> tuple[int, str]:
    """VM steps to read one page of 50 as the jobs list does, and the listing statement."""
    with meter.measure():
        page = ops.jobs(
            state=query.get("state"),
            queue=query.get("queue"),
            job_class=query.get("class"),
            before=before,
            limit=50,
        )
    assert len(page.jobs) == 50
    [listing] = [s for s in meter.statements if s.startswith("SELECT * FROM onward_jobs")]
    return meter.steps, listing


def deep_before(client: TestClient, query: dict[str, str]) -> str:
    """A ``before`` id near the end of the list (found by following the API's pages), so
    the page read after it is among the oldest yet full."""
    ids: list[str] = []
    before: str | None = None
    while True:
        params = {**query, "limit": "1000", **({"before": before} if before else {})}
        data = client.get("/api/jobs", params=params).json()
        ids += [j["id"] for j in data["jobs"]]
        before = data["next"]
        if before is None:
            break
    assert len(ids) > 300
    return ids[-60]


def test_each_page_reads_an_index_and_costs_the_same_at_any_depth_and_size(
    sqlite_store: onward.Store, meter: Meter
) -> None:
    ops = Admin(sqlite_store)
    client = TestClient(create_app(sqlite_store))
    add_jobs(sqlite_store, 2000)
    first: dict[int, int] = {}
    for i, query in enumerate(FILTERS):
        cost_first, _ = page_cost(meter, ops, query, None)
        cost_deep, sql = page_cost(meter, ops, query, deep_before(client, query))
        first[i] = cost_first
        # A page deep in the list costs what the first page costs.
        assert cost_deep <= cost_first * 1.2, (query, cost_first, cost_deep)
        plan = meter.plan(sql)
        assert plan[0].startswith("SEARCH onward_jobs USING"), (query, plan)
        assert not any("TEMP B-TREE" in line for line in plan), (query, plan)  # no sort of the matches
        assert not any(line.startswith("SCAN") for line in plan), (query, plan)  # no full scan

    # Twice the jobs: a page still costs the same.
    add_jobs(sqlite_store, 2000)
    for i, query in enumerate(FILTERS):
        cost_first, _ = page_cost(meter, ops, query, None)
        assert cost_first <= first[i] * 1.2, (query, first[i], cost_first)
        cost_deep, _ = page_cost(meter, ops, query, deep_before(client, query))
        assert cost_deep <= first[i] * 1.2, (query, first[i], cost_deep)

    # For scale: reading one queue's jobs without an index reads the whole table.
    with meter.measure():
        meter.conn.execute("SELECT * FROM onward_jobs WHERE queue || '' = 'q1'").fetchall()
    assert meter.steps > 5 * max(first.values())


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a fresh PostgreSQL store (skips without a server, fails in CI)."""
    import pg  # tests/pg.py

    yield from pg.fresh_database(request)


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[onward.Store]:
    """That store, the default during the test."""
    with stores.connected(postgres_url) as store:
        yield store


def test_on_postgresql_each_listed_jobs_children_are_read_through_an_index(
    postgres_store: onward.Store, postgres_url: str
) -> None:
    store = postgres_store
    import psycopg

    from onward.stores.postgres import sql as postgres_sql

    for _ in range(100):
        dj.Fanout.perform_later(10)
    assert drain(queues=["default"]) == 100
    assert Admin(store).jobs(limit=1).jobs[0].parent_id is not None  # a page of continuations
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("ANALYZE onward_jobs")
        rows = conn.execute("EXPLAIN " + postgres_sql.SELECT_JOB + " ORDER BY j.seq DESC LIMIT 51").fetchall()
    plan = "\n".join(r[0] for r in rows)
    assert "Seq Scan" not in plan, plan
    assert "Index Cond: (parent_id = " in plan, plan
