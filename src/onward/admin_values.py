"""What operators see: frozen views of jobs, steps, counts and throughput (``onward.admin``).

The CLI and the dashboard only format these.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from onward.records import FINISHED_STATES, HeldCount, JobRecord, State, StepRecord

__all__ = [
    "STATES",
    "JobDetail",
    "JobPage",
    "MinuteCount",
    "QueueCounts",
    "ReadyQueue",
    "RunningJob",
    "Stats",
    "StepProgress",
    "TreeNode",
    "current_step",
    "job_ended",
    "step_progress",
]

#: The states, in life-cycle order (for columns and filters).
STATES: tuple[str, ...] = tuple(s.value for s in State)


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of jobs, newest first. Pass ``next`` as ``before`` for the following page;
    it is ``None`` on the last page."""

    jobs: list[JobRecord]
    next: str | None


@dataclass(frozen=True, slots=True)
class StepProgress:
    """A step as saved, with what a progress bar needs.

    ``rate`` is items advanced per second, averaged since the step first started (so it
    includes time spent waiting to resume); ``eta`` is the seconds left at that rate, known
    only while the step is in progress and has a ``total``.
    """

    name: str
    status: str
    cursor: Any
    advanced: int
    total: int | None
    fraction: float | None
    elapsed: float | None
    rate: float | None
    eta: float | None
    started_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class TreeNode:
    """A job in a continuation chain and the jobs its success enqueued."""

    id: str
    job_class: str
    state: str
    children: list[TreeNode] = field(default_factory=list)
    missing: bool = False  # the job was purged; only its id is known
    truncated: bool = False  # more children exist than the tree shows


@dataclass(frozen=True, slots=True)
class JobDetail:
    """Everything known about one job: the record, its steps' progress, and the chain it
    belongs to (``tree`` starts at the chain's first job and contains this one)."""

    job: JobRecord
    steps: list[StepProgress]
    tree: TreeNode
    waiting: str | None = None  # why a ready job waits (its limits), in words


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A running job and the step it is in (``None`` before its first step or without steps)."""

    job: JobRecord
    step: StepProgress | None


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """Jobs of one queue per state; ``counts`` has every state in :data:`STATES`."""

    queue: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class ReadyQueue:
    """Jobs of ``queue`` ready to run now, and how long the oldest has been ready (seconds)."""

    queue: str
    ready: int
    oldest_age: float


@dataclass(frozen=True, slots=True)
class MinuteCount:
    """Jobs finished during the 60 seconds starting at ``start`` (UTC), per outcome."""

    start: datetime
    succeeded: int = 0
    failed: int = 0
    discarded: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.succeeded + self.failed + self.discarded + self.cancelled


@dataclass(frozen=True, slots=True)
class Stats:
    """Counts per queue and state, totals per state, recent throughput, and how many
    succeeded jobs have failed continuations.

    ``per_minute`` holds 60-second windows ending now, oldest first; the last one is the
    last minute, whose total is ``finished_last_minute``.
    """

    queues: list[QueueCounts]
    totals: dict[str, int]
    per_minute: list[MinuteCount]
    continuation_failed: int = 0  # succeeded jobs whose continuations raised
    held: tuple[HeldCount, ...] = ()  # limit keys with jobs held back by their limits

    @property
    def finished_last_minute(self) -> int:
        return self.per_minute[-1].total if self.per_minute else 0


# -- progress ------------------------------------------------------------------------------


def step_progress(step: StepRecord, now: float | None = None, ended: float | None = None) -> StepProgress:
    """What a progress bar needs for ``step``, computed at ``now`` (epoch seconds).

    ``ended`` is when the job finished, if it has: a step that never completed ran until
    then, so its time and rate stop there and it has no ETA (a step in progress of a job
    still enqueued or running keeps counting, since it may resume)."""
    now = time.time() if now is None else now
    last = ended if ended is not None else now
    end = step.completed_at.timestamp() if step.completed_at is not None else last
    elapsed = max(0.0, end - step.started_at.timestamp()) if step.started_at is not None else None
    rate = step.advanced / elapsed if elapsed and step.advanced else None
    eta = None
    if step.status != "completed" and step.total and rate and ended is None:
        eta = max(0, step.total - step.advanced) / rate
    fraction = step.progress
    return StepProgress(
        name=step.name,
        status=step.status,
        cursor=step.cursor,
        advanced=step.advanced,
        total=step.total,
        fraction=fraction,
        elapsed=elapsed,
        rate=rate,
        eta=eta,
        started_at=step.started_at,
        completed_at=step.completed_at,
    )


def job_ended(job: JobRecord) -> float | None:
    """When ``job`` finished (epoch seconds), or ``None`` while it may still run."""
    if job.state in FINISHED_STATES and job.finished_at is not None:
        return job.finished_at.timestamp()
    return None


def current_step(job: JobRecord, now: float | None = None) -> StepProgress | None:
    """The step ``job`` is in (the first not completed), with its progress."""
    for step in job.steps:
        if step.status != "completed":
            return step_progress(step, now, job_ended(job))
    return None
