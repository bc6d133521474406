"""Schedules on the PostgreSQL store: declaring them, recording their ticks, pausing them.

A mixin of :class:`onward.stores.postgres.PostgresStore`. Ticking is one transaction for all
the plans of a scheduler's pass: the schedules are locked (``FOR UPDATE``, in key order) and
checked (not paused, still at the ``ticked_through`` the plan was computed from); each tick is
inserted into ``onward_schedule_ticks`` with ``ON CONFLICT DO NOTHING`` and only the jobs of
the ticks that were new are inserted; then the schedules move on. That is one statement
(``schedule_sql.RECORD_TICKS``), one round trip to the server, whatever the number of
schedules; when a tick's job has a unique key (decided under the key's lock, one job at a
time), a few statements in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from onward.records import ScheduleRecord, schedule_record
from onward.stores._schedules import Sorted, moves, outcomes, recorded, sort_plans
from onward.stores.base import ScheduleDeclaration, ScheduleState, TickOutcome, TickPlan
from onward.stores.postgres import schedule_sql
from onward.stores.postgres.connection import PostgresConnections
from onward.stores.postgres.inserts import insert_jobs, job_rows

__all__ = ["PostgresSchedules"]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _json(rows: list[Any]) -> str:
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))


class PostgresSchedules(PostgresConnections):
    """The schedule methods of the Store protocol."""

    def declare_schedules(
        self, declared: Sequence[ScheduleDeclaration], worker_id: str | None, start: float | None
    ) -> list[ScheduleState]:
        if not declared:
            return []
        rows = _json([[d.key, d.job_class, d.cron, d.every, d.timezone, d.settings] for d in declared])
        first = None if start is None else datetime.fromtimestamp(start, UTC)
        params = (rows, first, worker_id, worker_id)

        def run(conn: psycopg.Connection[Any], attempt: int) -> list[Any]:
            for _ in range(3):
                rows = conn.execute(schedule_sql.DECLARE_SCHEDULES, params).fetchall()
                if all(r[1] is not None for r in rows):
                    return rows
                # Another process stored one of them first, after this statement's snapshot: read it again.
            raise RuntimeError("could not declare the schedules: they keep changing")

        found = {
            r[0]: ScheduleState(r[0], r[1].timestamp(), bool(r[2]), None if r[3] is None else r[3].timestamp(), r[4])
            for r in self._run(run)
        }
        return [found[d.key] for d in declared]

    def undeclare_schedules(self, keys: Sequence[str], worker_id: str) -> None:
        if keys:
            self._run(lambda conn, attempt: conn.execute(schedule_sql.UNDECLARE, (list(keys), worker_id)))

    def record_ticks(self, plans: Sequence[TickPlan]) -> list[TickOutcome]:
        if not plans:
            return []

        def run(conn: psycopg.Connection[Any], attempt: int) -> list[TickOutcome]:
            with conn.transaction():
                return _apply(conn, plans)

        outcomes = self._run(run)
        if any(o.enqueued for o in outcomes):
            self._notified(None)
        return outcomes

    def list_schedules(self) -> list[ScheduleRecord]:
        def run(conn: psycopg.Connection[Any], attempt: int) -> list[dict[str, Any]]:
            with conn.cursor(row_factory=dict_row) as cur:
                return cur.execute(schedule_sql.LIST_SCHEDULES).fetchall()

        return [schedule_record(row) for row in self._run(run)]

    def set_schedule_paused(self, key: str, paused: bool) -> bool:
        statement = schedule_sql.PAUSE_SCHEDULE if paused else schedule_sql.RESUME_SCHEDULE

        def run(conn: psycopg.Connection[Any], attempt: int) -> int:
            return conn.execute(statement, (key,)).rowcount

        return self._run(run) > 0


def _apply(conn: psycopg.Connection[Any], plans: Sequence[TickPlan]) -> list[TickOutcome]:
    """Every plan, inside one transaction (see the module's docstring)."""
    if len({p.key for p in plans}) == len(plans) and all(j.unique_key is None for p in plans for j in p.jobs):
        done, new = _record(conn, plans)
        ids = {t.job.id: t.job.id for t in done.ticks}
    else:  # jobs with unique keys (each decided under its key's lock), or a schedule twice
        done, new, ids = _record_keyed(conn, plans)
    result = recorded(done, new, ids)
    moved = moves(plans, done, result)
    if moved:
        rows = [[m.key, m.through, m.last_tick, m.last_skipped, m.last_job] for m in moved]
        conn.execute(schedule_sql.TICKED, (_json(rows),))
        pruned = [[m.key, _iso(m.keep_since)] for m in moved if m.keep_since is not None]
        if pruned:
            conn.execute(schedule_sql.PRUNE_TICKS, (_json(pruned),))
    return outcomes(plans, done, result)


def _record(conn: psycopg.Connection[Any], plans: Sequence[TickPlan]) -> tuple[Sorted, set[int]]:
    """``RECORD_TICKS``: the plans sorted against their schedules, and the indexes (in
    ``done.ticks``) of the ticks recorded now."""
    jobs = [job for p in plans for job in p.jobs]
    params = (
        _json([[p.key, p.after, p.through, p.overlap] for p in plans]),
        _json([[p.key, job.scheduled_for, job.id] for p in plans for job in p.jobs]),
        job_rows(jobs),
    )
    rows = conn.execute(schedule_sql.RECORD_TICKS, params).fetchall()
    stored = {r[1]: (ScheduleState(r[1], r[2].timestamp(), bool(r[3])), bool(r[4])) for r in rows if r[0] == 0}
    done = sort_plans(plans, stored)
    recorded_ids = {jobs[int(r[5]) - 1].id for r in rows if r[0] == 1}
    return done, {n for n, t in enumerate(done.ticks) if t.job.id in recorded_ids}


def _record_keyed(conn: psycopg.Connection[Any], plans: Sequence[TickPlan]) -> tuple[Sorted, set[int], dict[str, str]]:
    """As :func:`_record`, a statement at a time, for jobs with unique keys; also the id of
    the job that exists for each job inserted (a unique key may name another)."""
    locked = conn.execute(schedule_sql.LOCK_SCHEDULES, (sorted({p.key for p in plans}),)).fetchall()
    done = sort_plans(plans, {r[0]: (ScheduleState(r[0], r[1].timestamp(), bool(r[2])), bool(r[3])) for r in locked})
    rows = [
        [plans[t.plan].key, _iso(t.at), None if t.skipped else t.job.id, "overlap" if t.skipped else None]
        for t in done.ticks
    ]
    new = {int(r[0]) - 1 for r in conn.execute(schedule_sql.INSERT_TICKS, (_json(rows),)).fetchall()} if rows else set()
    jobs = [t for n, t in enumerate(done.ticks) if n in new and not t.skipped]
    inserted = insert_jobs(conn, [t.job for t in jobs]) if jobs else []
    ids = {t.job.id: job_id for t, job_id in zip(jobs, inserted, strict=True)}
    for t, job_id in zip(jobs, inserted, strict=True):
        if job_id != t.job.id:  # a unique key named a job that exists
            conn.execute(schedule_sql.SET_TICK_JOB, (job_id, plans[t.plan].key, _iso(t.at)))
    return done, new, ids
