"""Schedules on the SQLite store: declaring them, recording their ticks, pausing them.

A mixin of :class:`onward.stores.sqlite.SQLiteStore`. Each tick is a row of
``onward_schedule_ticks``, unique per schedule and tick (``INSERT OR IGNORE``), written in the
same ``BEGIN IMMEDIATE`` transaction as its job, which is inserted only if the tick row was
new; the schedule's ``ticked_through`` moves on in that transaction too, only if it still is
what the scheduler computed from.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from onward.records import ScheduleRecord, schedule_record
from onward.stores.base import ScheduleDeclaration, ScheduleState, TickOutcome, TickPlan
from onward.stores.sqlite import sql
from onward.stores.sqlite.connection import SQLiteConnections
from onward.stores.sqlite.inserts import insert_jobs

__all__ = ["SQLiteSchedules"]

#: Schedules declared per transaction: the writer lock is held for a few milliseconds at most.
DECLARE_CHUNK = 200


class SQLiteSchedules(SQLiteConnections):
    """The schedule methods of the Store protocol."""

    def declare_schedules(
        self, declared: Sequence[ScheduleDeclaration], worker_id: str | None, start: float | None
    ) -> list[ScheduleState]:
        now = self.clock()
        first = now if start is None else start
        at = now if worker_id is not None else None
        states = []
        for begin in range(0, len(declared), DECLARE_CHUNK):
            with self._write() as conn:
                for d in declared[begin : begin + DECLARE_CHUNK]:
                    params = (d.key, d.job_class, d.cron, d.every, d.timezone, d.settings, first, first, at, worker_id)
                    before = conn.execute(sql.DECLARED, (d.key,)).fetchone()
                    conn.execute(sql.DECLARE_SCHEDULE, params)
                    if before is None:
                        states.append(ScheduleState(d.key, first, False))
                    else:
                        states.append(ScheduleState(d.key, float(before[0]), bool(before[1]), before[2], before[3]))
        return states

    def undeclare_schedules(self, keys: Sequence[str], worker_id: str) -> None:
        if keys:
            with self._write() as conn:
                conn.executemany(sql.UNDECLARE, [(key, worker_id) for key in keys])

    def record_ticks(self, plans: Sequence[TickPlan]) -> list[TickOutcome]:
        if not plans:
            return []
        now = self.clock()
        with self._write() as conn:
            outcomes = [_apply(conn, plan, now) for plan in plans]
        if any(o.enqueued for o in outcomes):
            self._notify()
        return outcomes

    def list_schedules(self) -> list[ScheduleRecord]:
        return [schedule_record(row) for row in self._exec(sql.LIST_SCHEDULES).fetchall()]

    def set_schedule_paused(self, key: str, paused: bool) -> bool:
        statement = sql.PAUSE_SCHEDULE if paused else sql.RESUME_SCHEDULE
        return self._exec_write(statement, (self.clock(), key)).rowcount > 0


def _apply(conn: sqlite3.Connection, plan: TickPlan, now: float) -> TickOutcome:
    """One plan, inside the write transaction (see the module's docstring)."""
    row = conn.execute(sql.SCHEDULE_FOR_TICKS, (plan.key,)).fetchone()
    if row is None:
        return TickOutcome(plan.key, False, None)
    stored = ScheduleState(plan.key, float(row[0]), bool(row[1]))
    if stored.paused or stored.ticked_through != plan.after:
        return TickOutcome(plan.key, False, stored)
    live = not plan.overlap and bool(row[2])  # the previous job is still enqueued or running
    enqueued: list[tuple[float, str]] = []
    skipped: list[float] = []
    for job in plan.jobs:
        tick = job.scheduled_for
        assert tick is not None
        if live:
            if conn.execute(sql.INSERT_TICK, (plan.key, tick, None, "overlap", now)).rowcount:
                skipped.append(tick)
            continue
        if not conn.execute(sql.INSERT_TICK, (plan.key, tick, job.id, None, now)).rowcount:
            continue  # this tick was recorded already: its job exists
        [job_id] = insert_jobs(conn, [job], now, None)
        if job_id != job.id:  # a unique key named a job that exists
            conn.execute(sql.SET_TICK_JOB, (job_id, plan.key, tick))
        enqueued.append((tick, job_id))
    last_tick = max([t for t, _ in enqueued] + skipped, default=None)
    last_job = enqueued[-1][1] if enqueued else None
    was_skipped = None if last_tick is None else not enqueued
    conn.execute(sql.TICKED, (plan.through, last_tick, was_skipped, last_job, plan.key))
    conn.execute(sql.PRUNE_TICKS, (plan.key, plan.keep_since))
    return TickOutcome(plan.key, True, ScheduleState(plan.key, plan.through, False), tuple(enqueued), tuple(skipped))
