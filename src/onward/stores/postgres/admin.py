"""Reading jobs and the operators' actions (``onward.admin``) on the PostgreSQL store.

A mixin of :class:`onward.stores.postgres.PostgresStore`, whose connections
(:class:`~onward.stores.postgres.connection.PostgresConnections`) it uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import psycopg
from psycopg.rows import dict_row

from onward import lifecycle
from onward.lifecycle import Action, CancelEffect
from onward.records import (
    FINISHED_STATES,
    BatchRecord,
    HeldCount,
    JobRecord,
    LimitState,
    State,
    batch_record,
    job_record,
)
from onward.stores._cancels import CancelWatchers
from onward.stores._common import filter_sql
from onward.stores.base import FinishedCount, JobFilter, PausedQueue, QueueReady, StateCount
from onward.stores.postgres import batch_sql, limit_sql, sql
from onward.stores.postgres.connection import PostgresConnections
from onward.stores.postgres.inserts import lock_keys

if TYPE_CHECKING:
    from onward.stores.base import Store

__all__ = ["PostgresAdmin"]

_FINISHED = sorted(s.value for s in FINISHED_STATES)


class PostgresAdmin(CancelWatchers, PostgresConnections):
    """``get``, ``list_jobs`` and the administration methods of the Store protocol."""

    # -- reading --------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord:
        def run(conn: psycopg.Connection[Any], attempt: int) -> dict[str, Any] | None:
            with conn.cursor(row_factory=dict_row) as cur:
                return cur.execute(sql.SELECT_JOB + " WHERE j.id = %s", (job_id,)).fetchone()

        row = self._run(run)
        if row is None:
            raise KeyError(job_id)
        return job_record(row, tuple(row["children"]), cast("Store", self))

    def get_batch(self, batch_id: str) -> BatchRecord:
        def run(conn: psycopg.Connection[Any], attempt: int) -> dict[str, Any] | None:
            with conn.cursor(row_factory=dict_row) as cur:
                return cur.execute(batch_sql.SELECT_BATCH, (batch_id,)).fetchone()

        row = self._run(run)
        if row is None:
            raise KeyError(batch_id)
        return batch_record(row, tuple(row["job_ids"]), tuple(row["callback_ids"]))

    def list_jobs(self, where: JobFilter) -> list[JobRecord]:
        clause, params = filter_sql(where, "%s", alias="j")
        query = sql.SELECT_JOB + clause + " ORDER BY j.seq DESC LIMIT %s"
        params.append(where.limit)

        def run(conn: psycopg.Connection[Any], attempt: int) -> list[dict[str, Any]]:
            with conn.cursor(row_factory=dict_row) as cur:
                return cur.execute(query, params).fetchall()

        return [job_record(r, tuple(r["children"]), cast("Store", self)) for r in self._run(run)]

    # -- administration (onward.admin) ------------------------------------------------------
    def _one(self, statement: str, params: Sequence[Any] = ()) -> Any:
        def run(conn: psycopg.Connection[Any], attempt: int) -> Any:
            return conn.execute(statement, params).fetchone()

        return self._run(run)

    def _all(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        def run(conn: psycopg.Connection[Any], attempt: int) -> list[Any]:
            return conn.execute(statement, params).fetchall()

        return self._run(run)

    def now(self) -> float:
        return float(self._one(sql.NOW)[0])

    def count_jobs(self) -> list[StateCount]:
        return [StateCount(r[0], r[1], int(r[2])) for r in self._all(sql.COUNTS)]

    def ready_by_queue(self) -> list[QueueReady]:
        return [QueueReady(r[0], int(r[1]), r[2].timestamp()) for r in self._all(sql.READY_BY_QUEUE)]

    def count_continuation_failed(self) -> int:
        return int(self._one(sql.COUNT_CONTINUATION_FAILED)[0])

    def finished_per_minute(self, minutes: int) -> list[FinishedCount]:
        rows = self._all(sql.FINISHED_PER_MINUTE, (60.0 * minutes,))
        return [FinishedCount(min(int(r[0]), minutes - 1), r[1], int(r[2])) for r in rows]

    def limit_state(self, job_id: str) -> LimitState | None:
        def run(conn: psycopg.Connection[Any], attempt: int) -> LimitState | None:
            row = conn.execute(limit_sql.LIMIT_STATE, (job_id,)).fetchone()
            if row is None:
                raise KeyError(job_id)
            key, concurrency, throttle_limit, per, held_until, now = row
            if key is None:
                return None
            counted = conn.execute(limit_sql.RUNNING_WITH_KEY, (key,)).fetchone()
            starts = (
                () if per is None else tuple(r[0] for r in conn.execute(limit_sql.STARTS_WITH_KEY, (key, now - per)))
            )
            running = int(counted[0]) if counted else 0
            return LimitState(key, concurrency, throttle_limit, per, running, starts, held_until)

        return self._run(run, persist=False)

    def held_by_key(self) -> list[HeldCount]:
        running = {key: int(n) for key, n in self._all(limit_sql.RUNNING_BY_KEY)}
        held = self._all(limit_sql.HELD_BY_KEY)
        return [HeldCount(key, int(count), running.get(key, 0)) for key, count in sorted(held)]

    def retry_failed_job(self, job_id: str) -> bool:
        def run(conn: psycopg.Connection[Any], attempt: int) -> bool:
            with conn.transaction():
                row = conn.execute(sql.STATE_KEY_QUEUE, (job_id,)).fetchone()
                if row is None:
                    raise KeyError(job_id)
                state, key, queue = row
                if not lifecycle.allows(state, Action.RETRY):
                    return False
                if key is not None:
                    lock_keys(conn, [key])
                    if conn.execute(sql.LIVE_WITH_KEY, (key,)).fetchone() is not None:
                        return False
                allowed = list(lifecycle.states_allowing(Action.RETRY))
                if conn.execute(sql.RETRY_JOB, (job_id, allowed)).rowcount == 0:
                    return False
                conn.execute("SELECT pg_notify(%s, %s)", (sql.CHANNEL, queue))
                return True

        done = self._run(run)
        if done:
            self._notified(None)
        return done

    def discard_job(self, job_id: str) -> bool:
        row = self._one(sql.DISCARD, (job_id, list(lifecycle.states_allowing(Action.DISCARD)), job_id))
        if row[0]:
            return True
        if not row[1]:
            raise KeyError(job_id)
        return False

    def cancel_job(self, job_id: str) -> CancelEffect:
        state, _, exists = self._one(sql.CANCEL_JOB, (job_id, job_id, job_id))
        if state is None:
            if not exists:
                raise KeyError(job_id)
            return CancelEffect.NONE
        if state == State.RUNNING:
            self._cancel_requested(job_id)  # an execution of this process stops at once
            return CancelEffect.REQUEST
        return CancelEffect.CANCEL

    def paused_queues(self) -> list[PausedQueue]:
        def run(conn: psycopg.Connection[Any], attempt: int) -> list[Any]:
            return conn.execute(sql.PAUSED_QUEUES).fetchall()

        return [PausedQueue(r[0], float(r[1])) for r in self._run(run, persist=False)]

    def set_queue_paused(self, queue: str, paused: bool) -> None:
        if paused:
            self._run(lambda conn, attempt: conn.execute(sql.PAUSE_QUEUE, (queue,)))
        else:
            self._run(lambda conn, attempt: conn.execute(sql.RESUME_QUEUE, (queue, queue)))
            self._notified(queue)

    def purge_finished(self, states: Sequence[str], finished_before: float, limit: int) -> int:
        chosen = [s for s in states if s in _FINISHED]
        if not chosen or limit < 1:
            return 0

        def run(conn: psycopg.Connection[Any], attempt: int) -> int:
            return conn.execute(sql.PURGE, (finished_before, chosen, limit)).rowcount

        return self._run(run)
