"""Schedules on the SQLite store: declaring them, recording their ticks, pausing them.

A mixin of :class:`onward.stores.sqlite.SQLiteStore`. Ticks are recorded in one ``BEGIN
IMMEDIATE`` transaction: each schedule moves on from the ``ticked_through`` its plan was made
from to the plan's last tick, only if that is still what is stored (and it is not paused), and
the jobs of the ticks in between are inserted. SQLite runs one write transaction at a time and
``ticked_through`` only ever moves forward, so the spans of ticks dealt with never overlap:
each tick enqueues one job at most, however many schedulers run it.

A tick that enqueued its job is recorded by that job's row (``schedule_key``,
``scheduled_for``); only a tick that did not (skipped under ``overlap=False``, or whose job's
unique key named a job that exists) gets a row of ``onward_schedule_ticks``. (A row per tick,
scattered over the table by schedule, would be most of the pages a pass writes.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from itertools import compress, repeat
from operator import is_not
from typing import Any

from onward.records import ScheduleRecord, schedule_record
from onward.stores._schedules import Recorded, Sorted, moves, outcomes, parts, recorded, sort_plans
from onward.stores.base import ScheduleDeclaration, ScheduleState, TickOutcome, TickPlan
from onward.stores.sqlite import schedule_sql
from onward.stores.sqlite.connection import SQLiteConnections
from onward.stores.sqlite.inserts import insert_jobs, insert_params

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
                    before = conn.execute(schedule_sql.DECLARED, (d.key,)).fetchone()
                    conn.execute(schedule_sql.DECLARE_SCHEDULE, params)
                    if before is None:
                        states.append(ScheduleState(d.key, first, False))
                    else:
                        states.append(ScheduleState(d.key, float(before[0]), bool(before[1]), before[2], before[3]))
        return states

    def undeclare_schedules(self, keys: Sequence[str], worker_id: str) -> None:
        if keys:
            with self._write() as conn:
                conn.executemany(schedule_sql.UNDECLARE, [(key, worker_id) for key in keys])

    def record_ticks(self, plans: Sequence[TickPlan]) -> list[TickOutcome]:
        if not plans:
            return []
        now = self.clock()
        # The rows are built before the writer lock is taken, which is then held only to run
        # statements: first as the plans expect to be applied (the common case), else, when a
        # plan is not (that transaction rolled back), sorted against what is stored.
        ready = _Expected(plans, now)
        if ready.usable:
            try:
                with self._write() as conn:
                    _apply_expected(conn, plans, ready)
                self._notify()
                return ready.outcomes
            except _NotAsExpected:
                pass
        with self._write() as conn:
            done, result = _apply(conn, plans, _rows(plans, now), now)
        if result.enqueued:
            self._notify()
        return outcomes(plans, done, result)

    def list_schedules(self) -> list[ScheduleRecord]:
        return [schedule_record(row) for row in self._exec(schedule_sql.LIST_SCHEDULES).fetchall()]

    def set_schedule_paused(self, key: str, paused: bool) -> bool:
        statement = schedule_sql.PAUSE_SCHEDULE if paused else schedule_sql.RESUME_SCHEDULE
        return self._exec_write(statement, (self.clock(), key)).rowcount > 0


class _NotAsExpected(Exception):
    """A plan applied as expected was not: roll back, and sort the plans against what is stored."""


#: Rows per statement at most when plans are applied as expected (the jobs' rows take 21
#: parameters each: well under SQLite's limit of 32,766).
EXPECTED_PART = 512


class _Expected:
    """The parameters of every statement for plans applied as expected: each schedule still
    where its plan started, not paused, its previous job not in the way."""

    def __init__(self, plans: Sequence[TickPlan], now: float) -> None:
        self.usable = len({p.key for p in plans}) == len(plans)
        self.jobs: dict[tuple[bool, ...], list[Any]] = {}  # the jobs' parameters but None, by which are not
        self.moved: list[Any] = []
        self.outcomes: list[TickOutcome] = []  # what the plans become if applied as expected
        for plan in plans:
            key, jobs = plan.key, plan.jobs
            enqueued = []
            for job in jobs:
                if job.unique_key is not None:
                    self.usable = False
                params = insert_params(job, now, None)
                bound = tuple(map(is_not, params, repeat(None)))
                values = self.jobs.get(bound)
                if values is None:
                    values = self.jobs[bound] = []
                values += compress(params, bound)
                enqueued.append((job.scheduled_for or 0.0, job.id))
            if jobs:
                last = jobs[-1]
                self.moved += (key, plan.after, plan.through, last.scheduled_for, last.id, int(plan.overlap))
            else:
                self.moved += (key, plan.after, plan.through, None, None, int(plan.overlap))
            self.outcomes.append(TickOutcome(key, True, ScheduleState(key, plan.through, False), tuple(enqueued)))
        self.pruned = [(p.key, p.keep_since) for p in plans if p.keep_since is not None]


def _apply_expected(conn: sqlite3.Connection, plans: Sequence[TickPlan], ready: _Expected) -> None:
    """Apply the plans as expected: the schedules move on, then the jobs of their ticks are
    inserted, a few statements over many rows each, none read back. Raises
    :class:`_NotAsExpected` (the transaction is then rolled back) when a schedule did not move
    on as its plan expected."""
    for size, values in _flat(ready.moved, len(plans)):
        if conn.execute(schedule_sql.move_on_sql(size), values).rowcount != size:
            raise _NotAsExpected
    for bound, params in ready.jobs.items():
        for size, values in _flat(params, len(params) // sum(bound)):
            conn.execute(schedule_sql.insert_bound_sql(bound, size), values)
    if ready.pruned:
        conn.executemany(schedule_sql.PRUNE_TICKS, ready.pruned)


def _flat(values: list[Any], rows: int) -> Iterator[tuple[int, list[Any]]]:
    """``values`` (``rows`` rows of equal width, one after the other) in parts of at most
    :data:`EXPECTED_PART` rows (the last one holding the rest)."""
    width = len(values) // rows if rows else 0
    for start in range(0, rows, EXPECTED_PART):
        size = min(EXPECTED_PART, rows - start)
        yield size, values[start * width : (start + size) * width]


def _rows(plans: Sequence[TickPlan], now: float) -> dict[str, tuple[Any, ...] | None]:
    """Per job id: its row (``None`` for a job with a unique key, inserted on its own)."""
    return {
        job.id: insert_params(job, now, None) if job.unique_key is None else None for plan in plans for job in plan.jobs
    }


def _apply(
    conn: sqlite3.Connection, plans: Sequence[TickPlan], rows: dict[str, tuple[Any, ...] | None], now: float
) -> tuple[Sorted, Recorded]:
    """Every plan, inside the write transaction (see the module's docstring)."""
    stored: dict[str, tuple[ScheduleState, bool]] = {}
    for keys in parts(sorted({p.key for p in plans})):
        for key, through, paused, live in conn.execute(schedule_sql.schedules_for_ticks_sql(len(keys)), keys):
            stored[key] = (ScheduleState(key, float(through), bool(paused)), bool(live))
    done = sort_plans(plans, stored)
    jobs = [t for t in done.ticks if not t.skipped]
    plain = [params for t in jobs if (params := rows[t.job.id]) is not None]
    for chunk in parts(plain):
        conn.execute(schedule_sql.insert_many_sql(len(chunk)), [v for params in chunk for v in params])
    # The ticks that insert no job of their own are recorded in the tick table.
    ticks: list[tuple[str, float, str | None, str | None, float]] = [
        (plans[t.plan].key, t.at, None, "overlap", now) for t in done.ticks if t.skipped
    ]
    ids = {t.job.id: t.job.id for t in jobs}
    for t in jobs:
        if t.job.unique_key is not None:
            [job_id] = insert_jobs(conn, [t.job], now, None)
            if job_id != t.job.id:  # the unique key named a job that exists
                ticks.append((plans[t.plan].key, t.at, job_id, None, now))
            ids[t.job.id] = job_id
    for part in parts(ticks):
        conn.execute(schedule_sql.insert_ticks_sql(len(part)), [v for row in part for v in row])
    result = recorded(done, set(range(len(done.ticks))), ids)
    moved = moves(plans, done, result)
    for some in parts(moved):
        values = [v for m in some for v in (m.key, m.through, m.last_tick, m.last_skipped, m.last_job)]
        conn.execute(schedule_sql.ticked_sql(len(some)), values)
    conn.executemany(schedule_sql.PRUNE_TICKS, [(m.key, m.keep_since) for m in moved if m.keep_since is not None])
    return done, result
