"""The scheduler: enqueues the ticks of the schedules declared in this process.

Every worker runs it (``Worker(schedules=True)``, the default). It declares its schedules to
the store (a schedule new to the store ticks from then on), then, whenever a tick is due,
computes from the stored ``ticked_through`` the ticks due since, and hands them to the store
(:meth:`~onward.stores.base.WorkerStore.record_ticks`): in one transaction each tick is
recorded once per schedule with its job, and ``ticked_through`` moves on only if no other
scheduler moved it first. So any number of workers, processes and hosts may run the same
schedules and each tick enqueues exactly one job.

Missed ticks: a tick that came due before this scheduler started watching its schedule (or
before another running worker last declared it) came due while no worker ran it. When more than one did,
the schedule's ``missed`` policy picks which to enqueue (``latest``, ``all`` up to
:data:`~onward.schedules.MAX_CATCH_UP`, ``skip``). Other ticks are all enqueued, however late:
a scheduler that was running was merely late (a busy machine). A worker that stops says so
(:meth:`Scheduler.close`); one that died is taken for running for up to
:data:`~onward.schedules.LIVE_WITHIN` seconds after its last declaration.

The scheduler wakes for the next tick (the worker's main thread asks :meth:`Scheduler.interval`),
re-declares its schedules every :data:`DECLARE_EVERY` seconds (which tells operators that a
live worker runs them), and holds each write transaction for at most :data:`PLANS_PER_WRITE`
schedules.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from onward import events, serialization
from onward.ids import new_ids
from onward.schedules import DECLARE_EVERY, LIVE_WITHIN, MAX_CATCH_UP, Schedule, declared
from onward.stores.base import ScheduleDeclaration, ScheduleState, Store, TickOutcome, TickPlan

__all__ = ["PLANS_PER_WRITE", "TICK_HISTORY", "Scheduler", "Ticked"]

log = logging.getLogger("onward.scheduler")

#: Schedules whose ticks are recorded in one transaction.
PLANS_PER_WRITE = 1024
#: Tick records kept per schedule: this many ticks (a day at most), pruned whenever half as
#: many again have accumulated.
TICK_HISTORY = 100
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Ticked:
    """A tick that enqueued a job: the schedule, the tick (epoch seconds) and the job's id."""

    key: str
    tick: float
    job_id: str


@dataclass(slots=True)
class _Watched:
    """A schedule this scheduler runs, as it last knew it from the store."""

    schedule: Schedule
    since: float  # when this scheduler started watching it (the store's clock)
    after: float  # the stored ticked_through
    paused: bool
    due: float = field(default=0.0)  # its next tick after ``after``
    pruned: float = field(default=-math.inf)  # the tick up to which tick records were last pruned
    history: float = field(default=0.0)  # the span of tick records kept then


class Scheduler:
    """The scheduler duty of a worker (``worker_id``), or, with ``at``, one pass at that
    instant (:func:`onward.testing.run_schedules`): no live worker is recorded then, and
    schedules new to the store tick from ``at``."""

    name = "scheduler"

    def __init__(
        self,
        worker_id: str | None,
        *,
        schedules: Callable[[], list[Schedule]] = declared,
        at: float | None = None,
    ) -> None:
        self.worker_id = worker_id
        self._schedules = schedules
        self._at = at
        self._offset = 0.0  # the store's clock minus this machine's
        self._watched: dict[str, _Watched] = {}
        self._declarations: dict[int, tuple[Schedule, ScheduleDeclaration]] = {}
        self._declare_at = 0.0  # time.monotonic() of the next declaration
        self._soonest = math.inf  # the earliest next tick of the schedules watched

    # -- the duty -------------------------------------------------------------------------
    def interval(self) -> float:
        until_declare = self._declare_at - time.monotonic()
        return max(0.0, min(self._soonest - self.now(), until_declare))

    def run(self, store: Store) -> bool:
        return bool(self.tick(store))

    def close(self, store: Store) -> None:
        """A stopping worker no longer runs its schedules: the next worker to start counts
        the ticks that come due meanwhile as missed."""
        if self.worker_id is not None and self._watched:
            store.undeclare_schedules(list(self._watched), self.worker_id)

    def now(self) -> float:
        """The instant it is by the store's clock (or the pass's ``at``), epoch seconds."""
        return self._at if self._at is not None else time.time() + self._offset

    def tick(self, store: Store) -> list[Ticked]:
        """Declare the schedules if it is time, then enqueue every due tick; returns the
        ticks that enqueued a job, oldest first within each schedule."""
        if time.monotonic() >= self._declare_at:
            self._declare(store)
        now = self.now()
        due = [w for w in self._watched.values() if w.due <= now] if self._soonest <= now else []
        ticked: list[Ticked] = []
        for _ in range(3):  # a plan found stale is made again from what is stored now (twice at most)
            if not due:
                break
            stale = []
            for begin in range(0, len(due), PLANS_PER_WRITE):
                chunk = due[begin : begin + PLANS_PER_WRITE]
                plans = self._plans(chunk, now)
                outcomes = store.record_ticks(plans)
                for watched, plan, outcome in zip(chunk, plans, outcomes, strict=True):
                    if self._learn(watched, plan, outcome, now, ticked):
                        stale.append(watched)
            due = [w for w in stale if w.due <= now]
        self._soonest = min((w.due for w in self._watched.values()), default=math.inf)
        return ticked

    # -- declaring --------------------------------------------------------------------------
    def _declare(self, store: Store) -> None:
        self._declare_at = time.monotonic() + DECLARE_EVERY
        schedules = self._schedules()
        if not schedules:
            self._watched.clear()
            self._soonest = math.inf
            return
        states = store.declare_schedules([self._declaration(s) for s in schedules], self.worker_id, self._at)
        if self._at is None:
            self._offset = store.now() - time.time()
        since = self.now()
        watched: dict[str, _Watched] = {}
        for schedule, state in zip(schedules, states, strict=True):
            known = self._watched.get(schedule.key)
            if known is None or known.schedule is not schedule:
                # Another running worker runs it: ticks due since it declared it are late there, not missed.
                declared_at = state.declared_at
                running = declared_at is not None and declared_at >= since - LIVE_WITHIN
                watching = since
                if running and declared_at is not None and state.declared_by != self.worker_id:
                    watching = min(since, declared_at)
                known = _Watched(schedule, watching, state.ticked_through, state.paused)
            self._adopt(known, state, since)
            watched[schedule.key] = known
        self._watched = watched
        self._soonest = min((w.due for w in watched.values()), default=math.inf)

    def _declaration(self, schedule: Schedule) -> ScheduleDeclaration:
        cached = self._declarations.get(id(schedule))
        if cached is not None and cached[0] is schedule:
            return cached[1]
        settings = schedule.settings
        stored = {
            "args": serialization.from_json(settings["args"]),
            "kwargs": serialization.from_json(settings["kwargs"]),
            **{k: settings[k] for k in ("missed", "overlap", "queue", "priority")},
        }
        made = ScheduleDeclaration(
            key=schedule.key,
            job_class=schedule.job_path,
            cron=schedule.cron,
            every=settings["every"],
            timezone=schedule.timezone,
            settings=serialization.to_json(stored, "settings"),
        )
        self._declarations[id(schedule)] = (schedule, made)
        return made

    def _adopt(self, watched: _Watched, state: ScheduleState, now: float) -> None:
        """Take what the store says of ``watched``'s schedule, and when it is due next."""
        watched.after, watched.paused = state.ticked_through, state.paused
        rule = watched.schedule.rule
        # A paused schedule is looked at again at its next tick: the store says whether it still is.
        watched.due = rule.next_after(max(now, state.ticked_through) if state.paused else state.ticked_through)

    # -- ticking ----------------------------------------------------------------------------
    def _plans(self, chunk: list[_Watched], now: float) -> list[TickPlan]:
        found = [self._ticks(w, now) for w in chunk]
        ids = iter(new_ids(sum(len(ticks) for ticks, _ in found)))
        plans = []
        for watched, (ticks, through) in zip(chunk, found, strict=True):
            schedule = watched.schedule
            keep_since = None
            if through - watched.pruned >= 1.5 * watched.history:  # now and then: tick records older than history go
                watched.history = min(_DAY, TICK_HISTORY * (schedule.rule.next_after(through) - through))
                keep_since = watched.pruned = through - watched.history
            jobs = [schedule.new_job(t, next(ids)) for t in ticks]
            plans.append(TickPlan(schedule.key, watched.after, through, jobs, schedule.overlap, keep_since))
        return plans

    def _ticks(self, watched: _Watched, now: float) -> tuple[list[float], float]:
        """The ticks to enqueue for ``watched``, and the latest tick due (to record as dealt with)."""
        schedule, rule, after = watched.schedule, watched.schedule.rule, watched.after
        if after >= watched.since:  # the usual case: every tick due came due while this scheduler ran it
            late = rule.recent(after, now, MAX_CATCH_UP)
            return late, late[-1] if late else after
        wanted = MAX_CATCH_UP if schedule.missed == "all" else 2
        missed = rule.recent(after, min(now, watched.since), wanted)  # came due while no worker ran it
        late = rule.recent(max(after, watched.since), now, MAX_CATCH_UP)  # came due while this one ran it
        through = max(missed + late)
        if len(missed) > 1:
            kept = {"latest": missed[-1:], "all": missed, "skip": []}[schedule.missed]
            log.info(
                "schedule %s: %s ticks came due while no worker ran it; missed=%r enqueues %d of them",
                schedule.key,
                len(missed) if schedule.missed == "all" else "several",
                schedule.missed,
                len(kept),
                extra={"event": "schedule_missed"},
            )
            missed = kept
        return (missed + late)[-MAX_CATCH_UP:], through

    def _learn(self, watched: _Watched, plan: TickPlan, outcome: TickOutcome, now: float, out: list[Ticked]) -> bool:
        """Update ``watched`` from ``outcome``; ``True`` when its plan was stale (make it again)."""
        if outcome.state is None:  # no longer in the store: declare it again at the next pass
            self._declare_at = 0.0
            watched.due = watched.schedule.rule.next_after(now)
            return False
        self._adopt(watched, outcome.state, now)
        if not outcome.applied:
            return not outcome.state.paused
        key = watched.schedule.key
        enqueued = outcome.enqueued
        if enqueued:
            out += [Ticked(key, t, job_id) for t, job_id in enqueued]
            if events.ENQUEUED in events.wanted:  # announce the jobs (not those a unique key found existing)
                jobs = plan.jobs
                if len(jobs) != len(enqueued):
                    new = {job.scheduled_for: job for job in jobs}
                    jobs = [new[t] for t, _ in enqueued]
                events.enqueued(jobs, [job_id for _, job_id in enqueued])
        for t in outcome.skipped:
            log.info(
                "schedule %s: tick %s skipped: its previous job is still enqueued or running (overlap=False)",
                key,
                datetime.fromtimestamp(t, UTC).isoformat(),
                extra={"event": "schedule_skipped"},
            )
        return False
