"""The SQLite file's schema: older files are brought up to date on connect with every job kept,
and listing or counting jobs by state reads an index, never the whole table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from jobs_core import Echo, Fails
from onward import stores
from onward.admin import Admin
from onward.stores._common import filter_sql
from onward.stores.base import JobFilter
from onward.stores.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from onward.stores.sqlite.sql import COUNTS as _COUNTS
from onward.stores.sqlite.sql import STATE_SQL as _STATE_SQL
from onward.testing import drain

STATES = ("enqueued", "running", "succeeded", "failed", "discarded")


def jobs_in_every_state() -> None:
    """Two queues; jobs enqueued, running (claimed), succeeded, failed and discarded."""
    Echo.set(queue="a").perform_all_later([(i,) for i in range(3)])
    Fails.set(queue="b").perform_later()
    drain()
    Echo.set(queue="b").perform_all_later([(i,) for i in range(4)])
    discarded = Echo.set(queue="a", wait=3600).perform_later("later")
    Admin(stores.default()).discard(discarded.id)
    stores.default().claim("w", ["b"], 30.0, 2)


def snapshot(store: stores.Store) -> tuple[list[tuple[str, str, int]], dict[str, list[str]]]:
    counts = sorted((c.queue, c.state, c.count) for c in store.count_jobs())  # type: ignore[attr-defined]
    listed = {state: [r.id for r in store.list_jobs(JobFilter(state=state, limit=100))] for state in STATES}
    return counts, listed


def test_a_file_of_an_older_version_is_migrated_on_connect_with_every_job_kept(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:2]:  # the file as the previous release left it
        conn.executescript(migration)
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    with stores.connected(f"sqlite:///{path}") as old:
        jobs_in_every_state()
        before = snapshot(old)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with stores.connected(f"sqlite:///{path}") as migrated:
        assert snapshot(migrated) == before
        counts, listed = before
        assert {state for _, state, _ in counts} == set(STATES)
        assert all(listed[state] for state in STATES)


def test_listing_and_counting_by_state_read_an_index(sqlite_store: stores.Store) -> None:
    jobs_in_every_state()
    conn = sqlite_store._conn()  # type: ignore[attr-defined]

    def plan(sql: str) -> list[str]:
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]

    for state in STATES:
        clause, _ = filter_sql(JobFilter(state=state), "?", state_sql=_STATE_SQL)
        index = " INDEXED BY onward_jobs_lease" if state == "running" else ""
        steps = plan(f"SELECT * FROM onward_jobs{index}{clause} ORDER BY seq DESC LIMIT 50")
        assert steps[0].startswith(("SEARCH onward_jobs USING INDEX", "SCAN onward_jobs USING INDEX")), (state, steps)
    steps = plan(_COUNTS)
    assert not any(step == "SCAN onward_jobs" for step in steps), steps
