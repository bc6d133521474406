"""What reading and administering jobs exchange with a store: the filter of job listings
and the counts (part of the Store protocol, re-exported by :mod:`onward.stores.base`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FinishedCount", "JobFilter", "QueueReady", "StateCount"]


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What ``list_jobs`` returns: newest first, ``before`` a job id for keyset paging."""

    state: str | None = None
    queue: str | None = None
    job_class: str | None = None
    parent_id: str | None = None
    before: str | None = None
    limit: int = 50
    id_prefix: str | None = None  # jobs whose id starts with this (lower-case) text
    continuation_failed: bool = False  # only succeeded jobs whose continuations raised
    schedule_key: str | None = None  # jobs enqueued by this schedule
    batch_id: str | None = None  # members of this batch


@dataclass(frozen=True, slots=True)
class StateCount:
    """How many jobs of ``queue`` are in ``state`` (admin counts)."""

    queue: str
    state: str
    count: int


@dataclass(frozen=True, slots=True)
class FinishedCount:
    """How many jobs reached ``state`` (a finished state) during one minute-long window:
    ``minutes_ago`` 0 is the last 60 seconds up to the store's now, 1 the 60 seconds
    before that, and so on."""

    minutes_ago: int
    state: str
    count: int


@dataclass(frozen=True, slots=True)
class QueueReady:
    """The jobs of ``queue`` ready to run now (due, not running): how many, and when the one
    due first became due (epoch seconds)."""

    queue: str
    ready: int
    oldest_due: float
