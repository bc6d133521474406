"""Reading jobs and the operators' actions (``onward.admin``) on the SQLite store.

A mixin of :class:`onward.stores.sqlite.SQLiteStore`, whose connections
(:class:`~onward.stores.sqlite.connection.SQLiteConnections`) it uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from onward import lifecycle
from onward.lifecycle import Action, CancelEffect
from onward.records import FINISHED_STATES, BatchRecord, HeldCount, JobRecord, LimitState, batch_record, job_record
from onward.stores._cancels import CancelWatchers
from onward.stores._common import filter_sql
from onward.stores.base import FinishedCount, JobFilter, PausedQueue, QueueReady, StateCount
from onward.stores.sqlite import batch_sql, limit_sql, sql
from onward.stores.sqlite.connection import SQLiteConnections

if TYPE_CHECKING:
    from onward.stores.base import Store

__all__ = ["SQLiteAdmin"]

_FINISHED = tuple(sorted(s.value for s in FINISHED_STATES))


class SQLiteAdmin(CancelWatchers, SQLiteConnections):
    """``get``, ``list_jobs`` and the administration methods of the Store protocol."""

    # -- reading --------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord:
        row = self._exec(sql.SELECT_JOB, (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return job_record(row, self._children(row["id"]), cast("Store", self))

    def _children(self, job_id: str) -> tuple[str, ...]:
        return tuple(r[0] for r in self._exec(sql.CHILDREN, (job_id,)).fetchall())

    def get_batch(self, batch_id: str) -> BatchRecord:
        row = self._exec(batch_sql.SELECT_BATCH, (batch_id,)).fetchone()
        if row is None:
            raise KeyError(batch_id)
        members = tuple(r[0] for r in self._exec(batch_sql.BATCH_MEMBERS, (batch_id,)).fetchall())
        callbacks = tuple(r[0] for r in self._exec(batch_sql.BATCH_CALLBACKS, (batch_id,)).fetchall())
        return batch_record(row, members, callbacks)

    def list_jobs(self, where: JobFilter) -> list[JobRecord]:
        clause, params = filter_sql(where, "?", state_sql=sql.STATE_SQL)
        index = " INDEXED BY onward_jobs_lease" if where.state == "running" else ""  # few: sorting them is cheap
        if where.continuation_failed:
            index = " INDEXED BY onward_jobs_continuation_error"
        query = "SELECT * FROM onward_jobs" + index + clause + " ORDER BY seq DESC LIMIT ?"
        rows = self._exec(query, (*params, where.limit)).fetchall()
        return [job_record(r, self._children(r["id"]), cast("Store", self)) for r in rows]

    # -- administration (onward.admin) ------------------------------------------------------
    def now(self) -> float:
        return self.clock()

    def count_jobs(self) -> list[StateCount]:
        return [StateCount(r[0], r[1], r[2]) for r in self._exec(sql.COUNTS).fetchall() if r[2]]

    def ready_by_queue(self) -> list[QueueReady]:
        return [
            QueueReady(r[0], int(r[1]), float(r[2])) for r in self._exec(sql.READY_BY_QUEUE, (self.clock(),)).fetchall()
        ]

    def count_continuation_failed(self) -> int:
        return int(self._exec(sql.COUNT_CONTINUATION_FAILED).fetchone()[0])

    def finished_per_minute(self, minutes: int) -> list[FinishedCount]:
        now = self.clock()
        rows = self._exec(sql.FINISHED_PER_MINUTE, (now, now - 60 * minutes, now)).fetchall()
        return [FinishedCount(min(r[0], minutes - 1), r[1], r[2]) for r in rows]

    def limit_state(self, job_id: str) -> LimitState | None:
        row = self._exec(limit_sql.LIMIT_STATE, (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        key, concurrency, throttle_limit, per, held_until = row
        if key is None:
            return None
        running = self._exec(limit_sql.RUNNING_WITH_KEY, (key,)).fetchone()[0]
        starts = (
            () if per is None else tuple(r[0] for r in self._exec(limit_sql.STARTS_WITH_KEY, (key, self.clock() - per)))
        )
        return LimitState(key, concurrency, throttle_limit, per, running, starts, held_until)

    def held_by_key(self) -> list[HeldCount]:
        running = dict(self._exec(limit_sql.RUNNING_BY_KEY).fetchall())
        held = self._exec(limit_sql.HELD_BY_KEY).fetchall()
        return [HeldCount(key, count, running.get(key, 0)) for key, count in sorted((r[0], r[1]) for r in held)]

    def retry_failed_job(self, job_id: str) -> bool:
        with self._write() as conn:
            row = conn.execute(sql.STATE_AND_KEY, (job_id,)).fetchone()
            if row is None:
                raise KeyError(job_id)
            if not lifecycle.allows(row["state"], Action.RETRY):
                return False
            if row["unique_key"] is not None and conn.execute(sql.LIVE_WITH_KEY, (row["unique_key"],)).fetchone():
                return False
            allowed = lifecycle.states_allowing(Action.RETRY)
            statement = sql.RETRY_JOB.format(states=", ".join("?" * len(allowed)))
            conn.execute(statement, (self.clock(), job_id, *allowed))
        self._notify()
        return True

    def discard_job(self, job_id: str) -> bool:
        allowed = lifecycle.states_allowing(Action.DISCARD)
        marks = ", ".join("?" * len(allowed))
        cur = self._exec_write(sql.DISCARD.format(states=marks), (self.clock(), job_id, *allowed))
        if cur.rowcount:
            return True
        if self._exec(sql.EXISTS, (job_id,)).fetchone() is None:
            raise KeyError(job_id)
        return False

    def cancel_job(self, job_id: str) -> CancelEffect:
        now = self.clock()
        with self._write() as conn:
            row = conn.execute(sql.STATE_AND_KEY, (job_id,)).fetchone()
            if row is None:
                raise KeyError(job_id)
            effect = lifecycle.cancel_effect(row["state"])
            if effect == CancelEffect.CANCEL:
                conn.execute(sql.CANCEL_ENQUEUED, (now, now, job_id))
            elif effect == CancelEffect.REQUEST:
                conn.execute(sql.REQUEST_CANCEL, (now, job_id))
        if effect == CancelEffect.REQUEST:
            self._cancel_requested(job_id)  # an execution of this process stops at once
        return effect

    def paused_queues(self) -> list[PausedQueue]:
        return [PausedQueue(r[0], float(r[2])) for r in self._exec(sql.QUEUES).fetchall() if r[1]]

    def set_queue_paused(self, queue: str, paused: bool) -> None:
        if paused:
            self._exec_write(sql.PAUSE_QUEUE, (queue, self.clock()))
        else:
            self._exec_write(sql.RESUME_QUEUE, (queue,))
            self._notify()

    def purge_finished(self, states: Sequence[str], finished_before: float, limit: int) -> int:
        chosen = [s for s in states if s in _FINISHED]
        if not chosen or limit < 1:
            return 0
        return self._exec_write(sql.purge_sql(len(chosen)), (finished_before, *chosen, limit)).rowcount
