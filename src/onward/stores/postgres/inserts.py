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
from onward.stores._common import row_head
from onward.stores.base import Completion, NewBatch, NewJob
from onward.stores.postgres import batch_sql, sql

__all__ = [
    "completing",
    "insert_batches",
    "insert_jobs",
    "job_params",
    "job_rows",
    "json_rows",
    "key_use",
    "lock_keys",
    "one_insert",
    "parented_rows",
]

#: Jobs per ``INSERT_BATCH`` statement at most (a batch of 100,000 members is several statements).
INSERT_CHUNK = 10_000

#: ``sql.INSERT_ONE`` for a job due now with nothing but its class, queue, priority, arguments
#: and attempts (the common ``perform_later``): the same row (the columns left out are NULL,
#: ``scheduled_at`` is ``now()`` as a delay of 0 makes it), from 8 parameters instead of 22.
INSERT_PLAIN = (
    "WITH new AS (INSERT INTO onward_jobs (id, job_class, queue, priority, args, kwargs, state, max_attempts,"
    " max_resumptions, scheduled_at, enqueued_at) VALUES (%s, %s, %s, %s::int, %s, %s, 'enqueued', %s::int,"
    f" %s::int, now(), now()) RETURNING queue) SELECT pg_notify('{sql.CHANNEL}', queue) FROM new"
)
_NOTHING_CARRIED = (None,) * 8


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
    return (*row_head(job), job.unique_key, *carried(job))


def carried(job: NewJob) -> tuple[Any, ...]:
    """The values of the columns every insert carries after ``parent_id`` (``sql._CARRIED``)."""
    return (
        job.trace_context,
        job.schedule_key,
        job.scheduled_for,
        job.timeout,
        job.limit_key,
        job.concurrency,
        job.throttle_limit,
        job.throttle_per,
    )


def one_insert(
    job: NewJob, parent_id: str | None = None, base: datetime | None = None, batch_id: str | None = None
) -> tuple[str, tuple[Any, ...]]:
    """The statement inserting ``job`` (without a unique key) and notifying its queue, one
    round trip, and its parameters."""
    if (
        job.run_at is None
        and not job.delay
        and parent_id is None
        and base is None
        and batch_id is None
        and carried(job) == _NOTHING_CARRIED
    ):
        return INSERT_PLAIN, row_head(job)
    return sql.INSERT_ONE, (
        *row_head(job),
        job.run_at,
        base,
        float(job.delay),
        base,
        parent_id,
        *carried(job),
        batch_id,
    )


def _run_at(job: NewJob) -> datetime | None:
    return None if job.run_at is None else datetime.fromtimestamp(job.run_at, UTC)


def insert_jobs(
    conn: psycopg.Connection[Any],
    jobs: Sequence[NewJob],
    parent_id: str | None = None,
    base: datetime | None = None,
    batch_id: str | None = None,
) -> list[str]:
    """Insert ``jobs`` (delays counted from ``base``, default the transaction's ``now()``) and
    notify idle workers; returns their ids in order, a unique job yielding the id of the job
    that exists. Jobs with a unique key need an open transaction (the key is locked until it
    ends); without any, this is one statement."""
    if not jobs:
        return []
    if len(jobs) == 1 and jobs[0].unique_key is None:
        conn.execute(*one_insert(jobs[0], parent_id, base, batch_id))
        return [jobs[0].id]
    if all(job.unique_key is None for job in jobs):
        for first in range(0, len(jobs), INSERT_CHUNK):
            chunk = jobs[first : first + INSERT_CHUNK]
            conn.execute(sql.INSERT_BATCH, (parent_id, batch_id, base, job_rows(chunk)))
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
                *row_head(job),
                _run_at(job),
                start,
                job.delay,
                start,
                parent_id,
                *carried(job),
                batch_id,
                job.unique_key,
            ),
        )
        conn.execute("SELECT pg_notify(%s, %s)", (sql.CHANNEL, job.queue))
        ids.append(job.id)
    return ids


def _row(j: NewJob) -> tuple[Any, ...]:
    return (
        *row_head(j),
        j.delay,
        j.run_at,
        *carried(j),
    )


def _dumps(rows: list[Any]) -> str:
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def insert_batches(
    conn: psycopg.Connection[Any], batches: Sequence[NewBatch], base: datetime | None = None
) -> list[str]:
    """Insert ``batches``, their callbacks and members (inside a transaction); returns the
    members' ids, batch after batch. A member whose unique key names a job that exists is not
    a member (that job is not); a batch left without members is settled at once (its
    callbacks are inserted by the trigger)."""
    ids: list[str] = []
    for batch in batches:
        conn.execute(batch_sql.INSERT_BATCH_ROW, (batch.id, batch.description, base))
        callbacks = [("success", job) for job in batch.on_success] + [("finish", job) for job in batch.on_finish]
        if callbacks:
            conn.execute(batch_sql.INSERT_CALLBACKS, (batch.id, _callback_rows(callbacks)))
        ids += insert_jobs(conn, batch.members, None, base, batch.id)
        conn.execute(batch_sql.SET_BATCH_TOTAL, (batch.id, batch.id))
    return ids


def _callback_rows(callbacks: Sequence[tuple[str, NewJob]]) -> str:
    return _dumps(
        [
            (
                kind,
                *row_head(j),
                j.delay,
                j.run_at,
                j.unique_key,
                j.trace_context,
            )
            for kind, j in callbacks
        ]
    )


def job_rows(jobs: Sequence[NewJob]) -> str:
    """Jobs as the JSON rows ``INSERT_BATCH`` and ``COMPLETE_WITH_CHILDREN`` take."""
    return _dumps([_row(j) for j in jobs])


def completing(done: Sequence[Completion]) -> tuple[str, tuple[str, ...]]:
    """The statement that marks ``done`` succeeded, and its parameters: with the
    continuations of the successes written, if any has some."""
    rows = _dumps(
        [(c.id, c.token, c.result, c.checkpoint.steps, c.checkpoint.job_state, c.continuation_error) for c in done]
    )
    children = [(child, c.id) for c in done for child in c.children]
    if children:
        return sql.COMPLETE_MANY_WITH_CHILDREN, (rows, parented_rows(children))
    return sql.COMPLETE_MANY, (rows,)


def parented_rows(jobs: Sequence[tuple[NewJob, str]]) -> str:
    """Jobs with their parents' ids, as ``COMPLETE_MANY_WITH_CHILDREN`` takes them."""
    return _dumps([(_row(j), parent) for j, parent in jobs])


def json_rows(*columns: Sequence[Any]) -> str:
    """Parallel columns as the JSON array of rows that ``HEARTBEAT``, ``COMPLETE_MANY`` and
    ``UNCLAIM`` take."""
    return json.dumps(list(zip(*columns, strict=True)), ensure_ascii=False, separators=(",", ":"))
