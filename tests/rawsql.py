"""Plain SQL against a test store, for setting up a row in a state the API would take many
steps to reach. Statements use ``?`` placeholders; they become ``%s`` on PostgreSQL."""

from __future__ import annotations

import sqlite3
from typing import Any

from onward.stores.base import Store


def execute(store: Store, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run ``statement`` on ``store``'s database in its own transaction; returns the rows."""
    if store.url.startswith("sqlite:"):
        path = store.path  # type: ignore[attr-defined]
        with sqlite3.connect(path, timeout=30) as conn:
            return [tuple(r) for r in conn.execute(statement, params).fetchall()]

    def run(conn: Any, attempt: int) -> list[tuple[Any, ...]]:
        cur = conn.execute(statement.replace("?", "%s"), params)
        return [tuple(r) for r in cur.fetchall()] if cur.description else []

    return store._run(run)  # type: ignore[attr-defined,no-any-return]


def expire_lease(store: Store, job_id: str) -> None:
    """Make the lease of running job ``job_id`` expired now."""
    if store.url.startswith("sqlite:"):
        execute(store, "UPDATE onward_jobs SET lease_expires_at = ? WHERE id = ?", (store.now() - 1, job_id))
    else:
        execute(store, "UPDATE onward_jobs SET lease_expires_at = now() - interval '1 second' WHERE id = ?", (job_id,))


#: Times no API call can store, written directly: far past year 9999 and infinite.
FAR_FUTURE_SQLITE = 253402300800.0 + 86400 * 400  # year 10001
FAR_FUTURE_PG = "10001-01-01 00:00:00+00"


def poison_times(store: Store, job_id: str, *, due: bool = False) -> None:
    """Give job ``job_id`` times outside Python's ``datetime`` range, as a row written by
    other means could have: every time column but ``scheduled_at`` (kept due when ``due``)."""
    if store.url.startswith("sqlite:"):
        far, inf = FAR_FUTURE_SQLITE, 9e999
        execute(
            store,
            "UPDATE onward_jobs SET enqueued_at = ?, finished_at = ?, scheduled_for = ?,"
            " scheduled_at = CASE WHEN ? THEN scheduled_at ELSE ? END WHERE id = ?",
            (far, -inf, inf, due, far, job_id),
        )
    else:
        execute(
            store,
            "UPDATE onward_jobs SET enqueued_at = ?::timestamptz, finished_at = '-infinity',"
            " scheduled_for = 'infinity',"
            " scheduled_at = CASE WHEN ? THEN scheduled_at ELSE ?::timestamptz END WHERE id = ?",
            (FAR_FUTURE_PG, due, FAR_FUTURE_PG, job_id),
        )
