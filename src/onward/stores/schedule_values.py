"""What the scheduler and the stores exchange about schedules (see ``Store.declare_schedules``
and ``Store.record_ticks`` in :mod:`onward.stores.base`, which re-exports these)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onward.stores.base import NewJob


@dataclass(frozen=True, slots=True)
class ScheduleDeclaration:
    """A schedule as a process declares it: ``every`` in seconds, ``settings`` JSON text."""

    key: str
    job_class: str
    cron: str | None
    every: float | None
    timezone: str
    settings: str


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """A schedule's progress as stored: every tick up to ``ticked_through`` (epoch seconds)
    has been dealt with (enqueued, or skipped); ticks after it are to come. From
    ``declare_schedules``, also the declaration it found: when (epoch seconds) and by which
    worker the schedule was last declared by a running worker (``None``: by none, or that
    worker stopped)."""

    key: str
    ticked_through: float
    paused: bool
    declared_at: float | None = None
    declared_by: str | None = None


@dataclass(frozen=True, slots=True)
class TickPlan:
    """What a scheduler found due for one schedule, computed from the ``ticked_through`` it
    read (``after``): the jobs of the ticks to enqueue (each job's ``scheduled_for`` is its
    tick, oldest first) and the tick to record as dealt with (``through``). ``overlap``
    false: if the schedule's latest job is still enqueued or running, the ticks are recorded
    as skipped instead. Tick records older than ``keep_since`` may be deleted (``None``: keep
    them for now)."""

    key: str
    after: float
    through: float
    jobs: Sequence[NewJob]
    overlap: bool
    keep_since: float | None = None


@dataclass(frozen=True, slots=True)
class TickOutcome:
    """What became of a :class:`TickPlan`: ``applied`` unless the schedule was paused or
    another scheduler had moved it on (then ``state`` is what is stored now; ``None``: the
    store has no such schedule). ``enqueued`` pairs each new tick with the id of its job."""

    key: str
    applied: bool
    state: ScheduleState | None
    enqueued: tuple[tuple[float, str], ...] = ()
    skipped: tuple[float, ...] = ()
