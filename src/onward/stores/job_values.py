"""The values the core and the stores exchange about jobs (see :mod:`onward.stores.base`,
which re-exports them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

__all__ = [
    "Checkpoint",
    "Claimed",
    "Completion",
    "FinishedCount",
    "JobFilter",
    "NewBatch",
    "NewJob",
    "PausedQueue",
    "QueueReady",
    "Renewal",
    "StateCount",
    "TakenBack",
]


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to insert. ``run_at`` (epoch seconds) wins over ``delay`` (seconds from now;
    for continuations, from the parent's completion). A schedule's job names its schedule
    and its tick (``scheduled_for``, epoch seconds)."""

    id: str
    job_class: str
    queue: str
    priority: int
    args: str
    kwargs: str
    max_attempts: int
    max_resumptions: int | None = None
    delay: float = 0.0
    run_at: float | None = None
    unique_key: str | None = None
    fresh: bool = False
    trace_context: str | None = None  # W3C trace context of where it was enqueued (onward.tracing)
    schedule_key: str | None = None
    scheduled_for: float | None = None
    timeout: float | None = None  # seconds; None: the class's ``timeout``
    limit_key: str | None = None  # set only for a class with ``concurrency`` or ``throttle``
    concurrency: int | None = None
    throttle_limit: int | None = None
    throttle_per: float | None = None  # seconds


@dataclass(frozen=True, slots=True)
class NewBatch:
    """A batch to insert with its ``members`` (inserted with ``batch_id`` = ``id``) and its
    callbacks, kept by the store and inserted (with ``parent_batch_id`` = ``id``) in the
    transaction that makes them due: ``on_success`` once every member succeeded, ``on_finish``
    once every member is final. A store returns the members' ids after the ids of the plain
    jobs it was given, batch after batch."""

    id: str
    description: str | None
    members: Sequence[NewJob]
    on_success: Sequence[NewJob] = ()
    on_finish: Sequence[NewJob] = ()


@dataclass(frozen=True, slots=True)
class Claimed:
    """A job a worker (or ``perform_now``) now runs under ``lease_token``."""

    id: str
    job_class: str
    queue: str
    priority: int
    args: str
    kwargs: str
    attempts: int
    resumptions: int
    steps: str | None
    job_state: str | None
    lease_token: str
    resumed: bool
    parent_id: str | None = None
    unique_key: str | None = None
    trace_context: str | None = None
    scheduled_for: datetime | None = None  # the tick, for a schedule's job
    timeout: float | None = None  # set(timeout=...) at enqueue; None: the class's ``timeout``
    batch_id: str | None = None  # the batch this job is a member of
    parent_batch_id: str | None = None  # the batch whose callback this job is


class Checkpoint(NamedTuple):
    """Progress to save: the encoded steps and ``self.state``; ``progressed`` tells whether
    this execution changed anything since it started (a reclaim is then a resumption)."""

    steps: str | None
    job_state: str | None
    progressed: bool


class Completion(NamedTuple):
    """One success to commit with others (:meth:`WorkerStore.complete_many`): the job, its
    lease, its result and final checkpoint, and its continuations (none with a unique key),
    inserted only if the success is written; ``member`` of a batch, committing it may
    enqueue the batch's callbacks."""

    id: str
    token: str
    result: str
    checkpoint: Checkpoint
    continuation_error: str | None = None
    children: Sequence[NewJob] = ()
    member: bool = False  # of a batch: committing it may enqueue the batch's callbacks


class Renewal(NamedTuple):
    """What renewing leases found: the ids whose lease is lost, and those (still held) whose
    job an operator asked to cancel."""

    lost: set[str]
    cancel_requested: set[str]


@dataclass(frozen=True, slots=True)
class PausedQueue:
    """A queue no worker claims from, paused at ``paused_at`` (epoch seconds)."""

    name: str
    paused_at: float


class TakenBack(NamedTuple):
    """A job taken back after its worker's lease expired: who had it, and what it became
    (``resumed``, ``retried``, ``failed`` or ``cancelled``)."""

    id: str
    job_class: str
    worker_id: str | None
    verdict: str


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
