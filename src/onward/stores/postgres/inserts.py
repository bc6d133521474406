"""Inserting jobs through any psycopg connection, unique keys included.

Everything here takes a connection, so the same code inserts jobs for the store's own
transactions and inside a caller's transaction (:func:`onward.transaction`). Statements over
many jobs take their rows as one JSON array (see :mod:`onward.stores.postgres.sql`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from onward import lifecycle
from onward.errors import OnwardError
from onward.lifecycle import KeyUse
from onward.stores.base import NewJob
from onward.stores.postgres import sql

__all__ = ["insert_jobs", "job_params", "job_rows", "json_rows", "key_use", "lock_keys"]


def lock_keys(conn: psycopg.Connection[Any], keys: Sequence[str | None]) -> None:
    """Serialise, until the transaction ends, everything done with these unique keys.
    Keys are locked in sorted order so two batches cannot deadlock."""
    wanted = sorted({k for k in keys if k is not None})
    if wanted:
        conn.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(k)) FROM unnest(%s::text[]) AS k ORDER BY k",
            (sql.UNIQUE_LOCK_CLASS, wanted),
        )


def key_use(conn: psycopg.Connection[Any], job: NewJob, *, now: bool = False) -> tuple[KeyUse, str | None]:
    """What ``job``'s unique key decides (:func:`onward.lifecycle.unique_key_use`) and the id
    of the latest job with that key. Call with the key locked (:func:`lock_keys`)."""
    if job.unique_key is None:
        return KeyUse.NEW, None
    row = conn.execute(sql.LATEST_WITH_KEY, (job.unique_key,)).fetchone()
    if row is None:
        return KeyUse.NEW, None
    use = lifecycle.unique_key_use(row[1], fresh=job.fresh, now=now)
    if use == KeyUse.REFUSE:
        raise OnwardError(f"{job.job_class}: a job with unique key {job.unique_key!r} is already running ({row[0]})")
    return use, str(row[0])


def job_params(job: NewJob) -> tuple[Any, ...]:
    """The parameters of ``INSERT_NOW`` for ``job``."""
    return (
        job.id,
        job.job_class,
        job.queue,
        job.priority,
        job.args,
        job.kwargs,
        job.max_attempts,
        job.max_resumptions,
        job.unique_key,
        job.trace_context,
        job.schedule_key,
        job.scheduled_for,
        job.limit_key,
        job.concurrency,
        job.throttle_limit,
        job.throttle_per,
    )


def _run_at(job: NewJob) -> datetime | None:
    return None if job.run_at is None else datetime.fromtimestamp(job.run_at, UTC)


def insert_jobs(
    conn: psycopg.Connection[Any], jobs: Sequence[NewJob], parent_id: str | None = None, base: datetime | None = None
) -> list[str]:
    """Insert ``jobs`` (delays counted from ``base``, default the transaction's ``now()``) and
    notify idle workers; returns their ids in order, a unique job yielding the id of the job
    that exists. Jobs with a unique key need an open transaction (the key is locked until it
    ends); without any, this is one statement."""
    if not jobs:
        return []
    if len(jobs) == 1 and jobs[0].unique_key is None:
        job = jobs[0]
        params = (
            job.id,
            job.job_class,
            job.queue,
            job.priority,
            job.args,
            job.kwargs,
            job.max_attempts,
            job.max_resumptions,
            job.run_at,
            base,
            float(job.delay),
            base,
            parent_id,
            job.trace_context,
            job.schedule_key,
            job.scheduled_for,
            job.limit_key,
            job.concurrency,
            job.throttle_limit,
            job.throttle_per,
        )
        conn.execute(sql.INSERT_ONE, params)
        return [job.id]
    if all(job.unique_key is None for job in jobs):
        conn.execute(sql.INSERT_BATCH, (parent_id, base, job_rows(jobs)))
        return [job.id for job in jobs]
    lock_keys(conn, [job.unique_key for job in jobs])
    ids = []
    start = base or conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    for job in jobs:
        use, latest = key_use(conn, job)
        if use == KeyUse.EXISTING:
            assert latest is not None
            ids.append(latest)
            continue
        if use == KeyUse.RERUN:
            assert latest is not None
            conn.execute(sql.RERUN_FAILED, (_run_at(job), start, job.delay, latest))
            conn.execute("SELECT pg_notify(%s, %s)", (sql.CHANNEL, job.queue))
            ids.append(latest)
            continue
        conn.execute(
            sql.INSERT_KEYED,
            (
                job.id,
                job.job_class,
                job.queue,
                job.priority,
                job.args,
                job.kwargs,
                job.max_attempts,
                job.max_resumptions,
                _run_at(job),
                start,
                job.delay,
                start,
                parent_id,
                job.trace_context,
                job.schedule_key,
                job.scheduled_for,
                job.limit_key,
                job.concurrency,
                job.throttle_limit,
                job.throttle_per,
                job.unique_key,
            ),
        )
        conn.execute("SELECT pg_notify(%s, %s)", (sql.CHANNEL, job.queue))
        ids.append(job.id)
    return ids


def job_rows(jobs: Sequence[NewJob]) -> str:
    """Jobs as the JSON rows ``INSERT_BATCH`` and ``COMPLETE_WITH_CHILDREN`` take."""
    return json.dumps(
        [
            (
                j.id,
                j.job_class,
                j.queue,
                j.priority,
                j.args,
                j.kwargs,
                j.max_attempts,
                j.max_resumptions,
                j.delay,
                j.run_at,
                j.trace_context,
                j.schedule_key,
                j.scheduled_for,
                j.limit_key,
                j.concurrency,
                j.throttle_limit,
                j.throttle_per,
            )
            for j in jobs
        ],
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    )


def json_rows(*columns: Sequence[Any]) -> str:
    """Parallel columns as the JSON array of rows that ``HEARTBEAT``, ``COMPLETE_MANY`` and
    ``UNCLAIM`` take."""
    return json.dumps(list(zip(*columns, strict=True)), ensure_ascii=False, separators=(",", ":"))
