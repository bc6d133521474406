"""Inserting jobs into the SQLite store, unique keys included (inside a write transaction)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from onward import lifecycle
from onward.errors import OnwardError
from onward.lifecycle import KeyUse
from onward.stores.base import NewJob
from onward.stores.sqlite import sql

__all__ = ["insert_jobs", "insert_params", "key_use"]


def insert_params(job: NewJob, now: float, parent_id: str | None) -> tuple[Any, ...]:
    """The parameters of :data:`sql.INSERT` for ``job`` enqueued at ``now``."""
    scheduled = job.run_at if job.run_at is not None else now + job.delay
    return (
        job.id,
        job.job_class,
        job.queue,
        job.priority,
        job.args,
        job.kwargs,
        job.max_attempts,
        job.max_resumptions,
        scheduled,
        now,
        job.unique_key,
        parent_id,
        job.trace_context,
        job.schedule_key,
        job.scheduled_for,
        job.limit_key,
        job.concurrency,
        job.throttle_limit,
        job.throttle_per,
    )


def key_use(conn: sqlite3.Connection, job: NewJob, *, now: bool = False) -> tuple[KeyUse, str | None]:
    """What ``job``'s unique key decides (see :func:`onward.lifecycle.unique_key_use`) and the
    id of the latest job with that key. Call inside a write transaction."""
    if job.unique_key is None:
        return KeyUse.NEW, None
    latest = conn.execute(sql.LATEST_WITH_KEY, (job.unique_key,)).fetchone()
    if latest is None:
        return KeyUse.NEW, None
    use = lifecycle.unique_key_use(latest["state"], fresh=job.fresh, now=now)
    if use == KeyUse.REFUSE:
        raise OnwardError(
            f"{job.job_class}: a job with unique key {job.unique_key!r} is already running ({latest['id']})"
        )
    return use, latest["id"]


def insert_jobs(conn: sqlite3.Connection, jobs: Sequence[NewJob], now: float, parent_id: str | None) -> list[str]:
    """Insert inside an open write transaction, deduplicating unique keys; returns the ids
    of the jobs that exist, in order."""
    ids = []
    for job in jobs:
        use, latest = key_use(conn, job)
        if use == KeyUse.EXISTING:
            assert latest is not None
            ids.append(latest)
        elif use == KeyUse.RERUN:
            assert latest is not None
            scheduled = job.run_at if job.run_at is not None else now + job.delay
            conn.execute(sql.RERUN, (scheduled, latest))
            ids.append(latest)
        else:
            conn.execute(sql.INSERT, insert_params(job, now, parent_id))
            ids.append(job.id)
    return ids
