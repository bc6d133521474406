"""Inserting jobs into the SQLite store, unique keys included (inside a write transaction)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from onward import lifecycle
from onward.errors import OnwardError
from onward.lifecycle import KeyUse
from onward.stores._common import row_head
from onward.stores.base import NewBatch, NewJob
from onward.stores.sqlite import batch_sql, sql

__all__ = ["callback_params", "insert_batches", "insert_jobs", "insert_params", "key_use"]


def insert_params(job: NewJob, now: float, parent_id: str | None, batch_id: str | None = None) -> tuple[Any, ...]:
    """The parameters of :data:`sql.INSERT` for ``job`` enqueued at ``now``."""
    scheduled = job.run_at if job.run_at is not None else now + job.delay
    return (
        *row_head(job),
        scheduled,
        now,
        job.unique_key,
        parent_id,
        job.trace_context,
        job.schedule_key,
        job.scheduled_for,
        job.timeout,
        batch_id,
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


def insert_jobs(
    conn: sqlite3.Connection,
    jobs: Sequence[NewJob],
    now: float,
    parent_id: str | None,
    batch_id: str | None = None,
) -> list[str]:
    """Insert inside an open write transaction, deduplicating unique keys; returns the ids
    of the jobs that exist, in order."""
    if len(jobs) > 1 and all(job.unique_key is None for job in jobs):
        conn.executemany(sql.INSERT, [insert_params(job, now, parent_id, batch_id) for job in jobs])
        return [job.id for job in jobs]
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
            conn.execute(sql.INSERT, insert_params(job, now, parent_id, batch_id))
            ids.append(job.id)
    return ids


def insert_batches(conn: sqlite3.Connection, batches: Sequence[NewBatch], now: float) -> list[str]:
    """Insert ``batches``, their callbacks and members inside an open write transaction;
    returns the members' ids, batch after batch. A member whose unique key names a job that
    exists is not a member (that job is not); a batch left without members is settled at
    once (its callbacks are inserted by the trigger)."""
    ids: list[str] = []
    for batch in batches:
        conn.execute(batch_sql.INSERT_BATCH, (batch.id, batch.description, now, now))
        callbacks = [("success", job) for job in batch.on_success] + [("finish", job) for job in batch.on_finish]
        rows = [callback_params(batch.id, kind, i, job) for i, (kind, job) in enumerate(callbacks)]
        conn.executemany(batch_sql.INSERT_CALLBACK, rows)
        ids += insert_jobs(conn, batch.members, now, None, batch.id)
        conn.execute(batch_sql.SET_BATCH_TOTAL, (batch.id,))
    return ids


def callback_params(batch_id: str, kind: str, ord_: int, job: NewJob) -> tuple[Any, ...]:
    """The parameters of :data:`batch_sql.INSERT_CALLBACK`."""
    return (
        batch_id,
        kind,
        ord_,
        *row_head(job),
        job.delay,
        job.run_at,
        job.unique_key,
        job.trace_context,
    )
