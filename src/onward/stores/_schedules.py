"""What both SQL stores share to apply a scheduler's tick plans (``record_ticks``), inside the
transaction that holds the schedules: which plans apply, which ticks enqueue a job and which
are skipped, and what becomes of each plan. The SQL around it is each store's own."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from onward.stores._common import chunk_sizes
from onward.stores.base import NewJob, ScheduleState, TickOutcome, TickPlan

__all__ = ["Moved", "Recorded", "Sorted", "Tick", "moves", "outcomes", "parts", "recorded", "sort_plans"]

T = TypeVar("T")

#: Rows per statement at most (statements come in a few power-of-two shapes).
PART = 128


@dataclass(frozen=True, slots=True)
class Tick:
    """A tick of an applied plan: its plan's index, its job, and whether it is skipped
    (``overlap=False`` and the schedule's previous job still enqueued or running)."""

    plan: int
    job: NewJob
    skipped: bool
    at: float  # the tick (the job's scheduled_for)


@dataclass(frozen=True, slots=True)
class Moved:
    """How an applied plan moves its schedule on: ``last_tick`` and ``last_skipped`` are
    ``None`` when no tick was recorded, ``last_job`` when no job was enqueued."""

    key: str
    through: float
    last_tick: float | None
    last_skipped: bool | None
    last_job: str | None
    keep_since: float | None


@dataclass(frozen=True, slots=True)
class Sorted:
    """Plans sorted against the stored schedules: outcomes of those that do not apply, and the
    ticks of those that do."""

    refused: dict[int, TickOutcome]
    ticks: list[Tick]


def sort_plans(plans: Sequence[TickPlan], stored: Mapping[str, tuple[ScheduleState, bool]]) -> Sorted:
    """``stored``: each schedule's state and whether its latest job is enqueued or running."""
    current = dict(stored)
    refused: dict[int, TickOutcome] = {}
    ticks: list[Tick] = []
    for i, plan in enumerate(plans):
        state, live = current.get(plan.key, (None, False))
        if state is None or state.paused or state.ticked_through != plan.after:
            refused[i] = TickOutcome(plan.key, False, state)
            continue
        current[plan.key] = (ScheduleState(plan.key, plan.through, False), live)  # a second plan of it is stale
        skip = live and not plan.overlap
        ticks += [Tick(i, job, skip, job.scheduled_for or 0.0) for job in plan.jobs]
    return Sorted(refused, ticks)


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the ticks of the applied plans became: per plan index, the jobs enqueued
    ``(tick, job id)`` and the ticks skipped."""

    enqueued: dict[int, list[tuple[float, str]]]
    skipped: dict[int, list[float]]


def recorded(done: Sorted, new: set[int], ids: Mapping[str, str]) -> Recorded:
    """``new`` holds the indexes (in ``done.ticks``) of the ticks recorded now; ``ids`` maps the
    id of each job inserted to the id of the job that exists (a unique key may name another)."""
    enqueued: dict[int, list[tuple[float, str]]] = {}
    skipped: dict[int, list[float]] = {}
    for n, tick in enumerate(done.ticks):
        if n not in new:
            continue  # this tick was recorded already: its job exists
        if tick.skipped:
            skipped.setdefault(tick.plan, []).append(tick.at)
        else:
            enqueued.setdefault(tick.plan, []).append((tick.at, ids[tick.job.id]))
    return Recorded(enqueued, skipped)


def moves(plans: Sequence[TickPlan], done: Sorted, result: Recorded) -> list[Moved]:
    """How each applied plan moves its schedule on."""
    out = []
    for i, plan in enumerate(plans):
        if i in done.refused:
            continue
        jobs, passed = result.enqueued.get(i, ()), result.skipped.get(i, ())
        last = max(jobs[-1][0] if jobs else -math.inf, passed[-1] if passed else -math.inf)
        if last == -math.inf:
            out.append(Moved(plan.key, plan.through, None, None, None, plan.keep_since))
        else:
            out.append(Moved(plan.key, plan.through, last, not jobs, jobs[-1][1] if jobs else None, plan.keep_since))
    return out


def outcomes(plans: Sequence[TickPlan], done: Sorted, result: Recorded) -> list[TickOutcome]:
    """The outcome of every plan, in order."""
    out = []
    for i, plan in enumerate(plans):
        refused = done.refused.get(i)
        if refused is not None:
            out.append(refused)
            continue
        state = ScheduleState(plan.key, plan.through, False)
        jobs, passed = result.enqueued.get(i, []), result.skipped.get(i, [])
        out.append(TickOutcome(plan.key, True, state, tuple(jobs), tuple(passed)))
    return out


def parts(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """``items`` in slices of power-of-two sizes, at most :data:`PART` each."""
    start = 0
    for size in chunk_sizes(len(items), PART):
        yield items[start : start + size]
        start += size
