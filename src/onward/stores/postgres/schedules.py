"""Schedules on the PostgreSQL store: declaring them, recording their ticks, pausing them.

A mixin of :class:`onward.stores.postgres.PostgresStore`. Ticking is one transaction for all
the plans of a scheduler's pass: the schedules are locked (``FOR UPDATE``, in key order) and
checked (not paused, still at the ``ticked_through`` the plan was computed from); each tick is
inserted into ``onward_schedule_ticks`` with ``ON CONFLICT DO NOTHING`` and only the jobs of
the ticks that were new are inserted; then the schedules move on. A few statements whatever
the number of schedules.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from onward.records import ScheduleRecord, schedule_record
from onward.stores.base import NewJob, ScheduleDeclaration, ScheduleState, TickOutcome, TickPlan
from onward.stores.postgres import sql
from onward.stores.postgres.connection import PostgresConnections
from onward.stores.postgres.inserts import insert_jobs

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
                rows = conn.execute(sql.DECLARE_SCHEDULES, params).fetchall()
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
            self._run(lambda conn, attempt: conn.execute(sql.UNDECLARE, (list(keys), worker_id)))

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
                return cur.execute(sql.LIST_SCHEDULES).fetchall()

        return [schedule_record(row) for row in self._run(run)]

    def set_schedule_paused(self, key: str, paused: bool) -> bool:
        statement = sql.PAUSE_SCHEDULE if paused else sql.RESUME_SCHEDULE

        def run(conn: psycopg.Connection[Any], attempt: int) -> int:
            return conn.execute(statement, (key,)).rowcount

        return self._run(run) > 0


def _apply(conn: psycopg.Connection[Any], plans: Sequence[TickPlan]) -> list[TickOutcome]:
    """Every plan, inside one transaction (see the module's docstring)."""
    locked = conn.execute(sql.LOCK_SCHEDULES, (sorted({p.key for p in plans}),)).fetchall()
    stored = {r[0]: (ScheduleState(r[0], r[1].timestamp(), bool(r[2])), bool(r[3])) for r in locked}
    outcomes: dict[int, TickOutcome] = {}
    ticks: list[tuple[int, NewJob, bool]] = []  # (plan index, job, skipped: previous job still live)
    for i, plan in enumerate(plans):
        state, live = stored.get(plan.key, (None, False))
        if state is None or state.paused or state.ticked_through != plan.after:
            outcomes[i] = TickOutcome(plan.key, False, state)
            continue
        stored[plan.key] = (ScheduleState(plan.key, plan.through, False), live)  # a second plan of it is stale
        ticks += [(i, job, live and not plan.overlap) for job in plan.jobs]
    rows = [
        [plans[i].key, _iso(_tick(job)), None if skip else job.id, "overlap" if skip else None]
        for i, job, skip in ticks
    ]
    new = {int(r[0]) - 1 for r in conn.execute(sql.INSERT_TICKS, (_json(rows),)).fetchall()} if rows else set()
    to_insert = [job for n, (_, job, skip) in enumerate(ticks) if n in new and not skip]
    ids = dict(zip((j.id for j in to_insert), insert_jobs(conn, to_insert), strict=True)) if to_insert else {}
    enqueued: dict[int, list[tuple[float, str]]] = {}
    skipped: dict[int, list[float]] = {}
    for n, (i, job, skip) in enumerate(ticks):
        if n not in new:
            continue  # this tick was recorded already: its job exists
        if skip:
            skipped.setdefault(i, []).append(_tick(job))
            continue
        job_id = ids[job.id]
        if job_id != job.id:  # a unique key named a job that exists
            conn.execute(sql.SET_TICK_JOB, (job_id, plans[i].key, _iso(_tick(job))))
        enqueued.setdefault(i, []).append((_tick(job), job_id))
    moved = []
    for i, plan in enumerate(plans):
        if i in outcomes:
            continue
        done, passed = enqueued.get(i, []), skipped.get(i, [])
        last_tick = max([t for t, _ in done] + passed, default=None)
        moved.append(
            [
                plan.key,
                _iso(plan.through),
                None if last_tick is None else _iso(last_tick),
                None if last_tick is None else not done,
                done[-1][1] if done else None,
                _iso(plan.keep_since),
            ]
        )
        outcomes[i] = TickOutcome(
            plan.key, True, ScheduleState(plan.key, plan.through, False), tuple(done), tuple(passed)
        )
    if moved:
        conn.execute(sql.TICKED, (_json(moved),))
    return [outcomes[i] for i in range(len(plans))]


def _tick(job: NewJob) -> float:
    assert job.scheduled_for is not None
    return job.scheduled_for
