"""Reading jobs and the operators' actions (``onward.admin``) on the SQLite store.

A mixin of :class:`onward.stores.sqlite.SQLiteStore`, which provides ``_exec`` (a statement
on this thread's connection), ``_write`` (a ``BEGIN IMMEDIATE`` transaction), ``_notify``
(wake local workers) and ``clock``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, cast

from onward.records import JobRecord, job_record
from onward.stores.base import FinishedCount, JobFilter, StateCount

if TYPE_CHECKING:
    from onward.stores.base import Store


class ReadingAndAdmin:
    """``get``, ``list_jobs`` and the administration methods of the Store protocol."""

    clock: Callable[[], float]

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def _notify(self) -> None:
        raise NotImplementedError

    # -- reading --------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord:
        row = self._exec("SELECT * FROM onward_jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return job_record(row, self._children(row["id"]), cast("Store", self))

    def _children(self, job_id: str) -> tuple[str, ...]:
        rows = self._exec("SELECT id FROM onward_jobs WHERE parent_id = ? ORDER BY seq", (job_id,)).fetchall()
        return tuple(r[0] for r in rows)

    def list_jobs(self, where: JobFilter) -> list[JobRecord]:
        clause, params = where.where_sql("?", state_sql=_STATE_SQL)
        index = " INDEXED BY onward_jobs_lease" if where.state == "running" else ""  # few: sorting them is cheap
        sql = "SELECT * FROM onward_jobs" + index + clause + " ORDER BY seq DESC LIMIT ?"
        rows = self._exec(sql, (*params, where.limit)).fetchall()
        return [job_record(r, self._children(r["id"]), cast("Store", self)) for r in rows]

    # -- administration (onward.admin) ------------------------------------------------------
    def now(self) -> float:
        return self.clock()

    def count_jobs(self) -> list[StateCount]:
        rows = self._exec(_COUNTS).fetchall()
        return [StateCount(r[0], r[1], r[2]) for r in rows if r[2]]

    # ``+state`` keeps SQLite from choosing the index of finished jobs by state (``onward_jobs_done``)
    # over ``onward_jobs_finished`` (which holds the state too): that would read every succeeded job.
    def finished_per_minute(self, minutes: int) -> list[FinishedCount]:
        now = self.clock()
        rows = self._exec(
            "SELECT CAST((? - finished_at) / 60 AS INTEGER) AS ago, state, count(*) FROM onward_jobs"
            " WHERE finished_at IS NOT NULL AND finished_at > ? AND finished_at <= ?"
            " AND +state IN ('succeeded', 'failed', 'discarded') GROUP BY ago, state",
            (now, now - 60 * minutes, now),
        ).fetchall()
        return [FinishedCount(min(r[0], minutes - 1), r[1], r[2]) for r in rows]

    def retry_failed_job(self, job_id: str) -> bool:
        with self._write() as conn:
            row = conn.execute("SELECT state, unique_key FROM onward_jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(job_id)
            if row["state"] != "failed":
                return False
            if row["unique_key"] is not None:
                live = conn.execute(
                    "SELECT 1 FROM onward_jobs WHERE unique_key = ? AND state IN ('enqueued', 'running') LIMIT 1",
                    (row["unique_key"],),
                ).fetchone()
                if live is not None:
                    return False
            conn.execute(
                "UPDATE onward_jobs SET state = 'enqueued', attempts = 0, resume_pending = 0, scheduled_at = ?,"
                " finished_at = NULL WHERE id = ? AND state = 'failed'",
                (self.clock(), job_id),
            )
        self._notify()
        return True

    def discard_job(self, job_id: str) -> bool:
        cur = self._exec(
            "UPDATE onward_jobs SET state = 'discarded', finished_at = ?"
            " WHERE id = ? AND state IN ('enqueued', 'failed')",
            (self.clock(), job_id),
        )
        if cur.rowcount:
            return True
        if self._exec("SELECT 1 FROM onward_jobs WHERE id = ?", (job_id,)).fetchone() is None:
            raise KeyError(job_id)
        return False

    def purge_finished(self, states: Sequence[str], finished_before: float, limit: int) -> int:
        chosen = [s for s in states if s in ("succeeded", "failed", "discarded")]
        if not chosen or limit < 1:
            return 0
        marks = ", ".join("?" * len(chosen))
        cur = self._exec(
            "DELETE FROM onward_jobs WHERE seq IN (SELECT seq FROM onward_jobs"
            f" WHERE finished_at IS NOT NULL AND finished_at < ? AND +state IN ({marks})"
            " ORDER BY finished_at LIMIT ?)",
            (finished_before, *chosen, limit),
        )
        return cur.rowcount


# Each state counted through its own index (see migration 3 in sqlite_schema): waiting jobs
# from the ready index, running ones from the lease index, finished ones from theirs.
_COUNTS = (
    "SELECT queue, 'enqueued', count(*) FROM onward_jobs INDEXED BY onward_jobs_ready_queue"
    " WHERE state = 'enqueued' GROUP BY queue"
    " UNION ALL SELECT queue, 'running', count(*) FROM onward_jobs INDEXED BY onward_jobs_lease"
    " WHERE state = 'running' GROUP BY queue"
    " UNION ALL SELECT queue, state, count(*) FROM onward_jobs INDEXED BY onward_jobs_done_queue"
    " WHERE state IN ('succeeded', 'failed', 'discarded') GROUP BY queue, state"
)

# The condition for each state, as the partial indexes of migration 3 spell it.
_FINISHED = "state IN ('succeeded', 'failed', 'discarded')"
_STATE_SQL = {
    "enqueued": "state = 'enqueued'",
    "running": "state = 'running'",
    **{state: f"state = '{state}' AND {_FINISHED}" for state in ("succeeded", "failed", "discarded")},
}
