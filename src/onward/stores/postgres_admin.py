"""Reading jobs and the operators' actions (``onward.admin``) on the PostgreSQL store.

A mixin of :class:`onward.stores.postgres.PostgresStore`, which provides ``_run`` (a pooled
connection, retried when the server goes away) and ``_notified`` (wake local workers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import psycopg
from psycopg.rows import dict_row

from onward.records import JobRecord, job_record
from onward.stores import postgres_sql as q
from onward.stores.base import FinishedCount, JobFilter, StateCount

if TYPE_CHECKING:
    from onward.stores.base import Store

T = TypeVar("T")


class ReadingAndAdmin:
    """``get``, ``list_jobs`` and the administration methods of the Store protocol."""

    def _run(self, fn: Callable[[psycopg.Connection[Any], int], T], *, persist: bool = True) -> T:
        raise NotImplementedError

    def _notified(self, queue: str | None) -> None:
        raise NotImplementedError

    # -- reading --------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord:
        def run(conn: psycopg.Connection[Any], attempt: int) -> dict[str, Any] | None:
            with conn.cursor(row_factory=dict_row) as cur:
                return cur.execute(q.SELECT_JOB + " WHERE j.id = %s", (job_id,)).fetchone()

        row = self._run(run)
        if row is None:
            raise KeyError(job_id)
        return job_record(row, tuple(row["children"]), cast("Store", self))

    def list_jobs(self, where: JobFilter) -> list[JobRecord]:
        clause, params = where.where_sql("%s", alias="j")
        sql = q.SELECT_JOB + clause + " ORDER BY j.seq DESC LIMIT %s"
        params.append(where.limit)

        def run(conn: psycopg.Connection[Any], attempt: int) -> list[dict[str, Any]]:
            with conn.cursor(row_factory=dict_row) as cur:
                return cur.execute(sql, params).fetchall()

        return [job_record(r, tuple(r["children"]), cast("Store", self)) for r in self._run(run)]

    # -- administration (onward.admin) ------------------------------------------------------
    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        def run(conn: psycopg.Connection[Any], attempt: int) -> Any:
            return conn.execute(sql, params).fetchone()

        return self._run(run)

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        def run(conn: psycopg.Connection[Any], attempt: int) -> list[Any]:
            return conn.execute(sql, params).fetchall()

        return self._run(run)

    def now(self) -> float:
        return float(self._one("SELECT extract(epoch FROM now())")[0])

    def count_jobs(self) -> list[StateCount]:
        rows = self._all("SELECT queue, state, count(*) FROM onward_jobs GROUP BY queue, state")
        return [StateCount(r[0], r[1], int(r[2])) for r in rows]

    def finished_per_minute(self, minutes: int) -> list[FinishedCount]:
        rows = self._all(
            "SELECT floor(extract(epoch FROM now() - finished_at) / 60)::int AS ago, state, count(*)"
            " FROM onward_jobs WHERE finished_at IS NOT NULL AND finished_at > now() - make_interval(secs => %s)"
            " AND finished_at <= now() AND state IN ('succeeded', 'failed', 'discarded') GROUP BY ago, state",
            (60.0 * minutes,),
        )
        return [FinishedCount(min(int(r[0]), minutes - 1), r[1], int(r[2])) for r in rows]

    def retry_failed_job(self, job_id: str) -> bool:
        def run(conn: psycopg.Connection[Any], attempt: int) -> bool:
            with conn.transaction():
                row = conn.execute(
                    "SELECT state, unique_key, queue FROM onward_jobs WHERE id = %s", (job_id,)
                ).fetchone()
                if row is None:
                    raise KeyError(job_id)
                state, key, queue = row
                if key is not None:
                    q.lock_keys(conn, [key])
                    live = conn.execute(
                        "SELECT 1 FROM onward_jobs WHERE unique_key = %s AND state IN ('enqueued', 'running')", (key,)
                    ).fetchone()
                    if live is not None:
                        return False
                cur = conn.execute(
                    "UPDATE onward_jobs SET state = 'enqueued', attempts = 0, resume_pending = false,"
                    " scheduled_at = now(), finished_at = NULL WHERE id = %s AND state = 'failed'",
                    (job_id,),
                )
                if cur.rowcount == 0:
                    return False
                conn.execute("SELECT pg_notify(%s, %s)", (q.CHANNEL, queue))
                return bool(state == "failed")

        done = self._run(run)
        if done:
            self._notified(None)
        return done

    def discard_job(self, job_id: str) -> bool:
        row = self._one(
            "WITH u AS (UPDATE onward_jobs SET state = 'discarded', finished_at = now()"
            " WHERE id = %s AND state IN ('enqueued', 'failed') RETURNING 1)"
            " SELECT (SELECT count(*) FROM u), EXISTS (SELECT 1 FROM onward_jobs WHERE id = %s)",
            (job_id, job_id),
        )
        if row[0]:
            return True
        if not row[1]:
            raise KeyError(job_id)
        return False

    def purge_finished(self, states: Sequence[str], finished_before: float, limit: int) -> int:
        chosen = [s for s in states if s in ("succeeded", "failed", "discarded")]
        if not chosen or limit < 1:
            return 0

        def run(conn: psycopg.Connection[Any], attempt: int) -> int:
            return conn.execute(
                "DELETE FROM onward_jobs WHERE seq IN (SELECT seq FROM onward_jobs WHERE finished_at IS NOT NULL"
                " AND finished_at < to_timestamp(%s) AND state = ANY(%s) ORDER BY finished_at LIMIT %s)",
                (finished_before, chosen, limit),
            ).rowcount

        return self._run(run)
