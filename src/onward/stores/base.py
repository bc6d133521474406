"""The Store protocol: what the core asks of a backend, in domain words.

The core (``job``, ``steps``, ``execution``, ``worker``) talks only to this protocol. JSON
columns travel as text encoded by :mod:`onward.serialization`; times are decided by the store
(its own clock, or the database's), so every ``delay`` here is seconds from the store's now.

Every method that changes a claimed job takes its ``id`` and ``lease_token`` and raises
:class:`onward.errors.LeaseLost` when the job is no longer running under that token: an
execution whose lease was taken back cannot write its checkpoint, result or continuations.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol, runtime_checkable

from onward.records import HeldCount, JobRecord, LimitState, ScheduleRecord


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
    limit_key: str | None = None  # set only for a class with ``concurrency`` or ``throttle``
    concurrency: int | None = None
    throttle_limit: int | None = None
    throttle_per: float | None = None  # seconds


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


class Checkpoint(NamedTuple):
    """Progress to save: the encoded steps and ``self.state``; ``progressed`` tells whether
    this execution changed anything since it started (a reclaim is then a resumption)."""

    steps: str | None
    job_state: str | None
    progressed: bool


class Completion(NamedTuple):
    """One success to commit with others (:meth:`WorkerStore.complete_many`): the job, its
    lease, its result and final checkpoint."""

    id: str
    token: str
    result: str
    checkpoint: Checkpoint
    continuation_error: str | None = None


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


# -- schedules (what the scheduler and the stores exchange) ----------------------------------


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


class WorkerStore(Protocol):
    """What enqueueing and running jobs ask of a store (``job``, ``execution``, ``worker``).

    Using a closed store raises :class:`onward.errors.StoreClosed`.
    """

    url: str  # the URL it was opened with, password masked

    # -- enqueueing -------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob]) -> list[str]:
        """Insert jobs in one transaction; returns their ids in order. A job whose
        ``unique_key`` names an enqueued or running job yields that job's id instead; one
        whose key names a failed latest job (and not ``fresh``) re-enqueues that job."""
        ...

    def join_transaction(self, connection: Any) -> Callable[[Sequence[NewJob]], list[str]]:
        """Prepare to enqueue through ``connection``, inside the transaction the caller holds
        open on it (``onward.transaction``): returns the function that inserts jobs there, so
        that they exist if and only if that transaction commits. ``ConfigurationError`` for a
        store that cannot join a caller's transaction; ``TypeError`` for a connection it
        cannot use."""
        ...

    def start_now(self, job: NewJob, worker_id: str, lease_timeout: float) -> Claimed:
        """Record ``job`` as running, owned by the caller (``perform_now``). With a unique
        key: an enqueued or failed latest job of that key is taken instead; a running one
        raises ``OnwardError``."""
        ...

    # -- running ----------------------------------------------------------------------
    def claim(self, worker_id: str, queues: Sequence[str] | None, lease_timeout: float, limit: int) -> list[Claimed]:
        """Take up to ``limit`` ready jobs, lower priority first, then oldest schedule."""
        ...

    def heartbeat(self, leases: Sequence[tuple[str, str]], lease_timeout: float) -> set[str]:
        """Extend the leases of ``(id, token)`` pairs; returns the ids whose lease is lost."""
        ...

    def save_checkpoint(self, job_id: str, token: str, checkpoint: Checkpoint, resumption: bool = False) -> None:
        """Save progress of a running job (``resumption`` counts one, for in-place resumes)."""
        ...

    def complete(
        self,
        job_id: str,
        token: str,
        result: str,
        checkpoint: Checkpoint,
        children: Sequence[NewJob],
        continuation_error: str | None,
    ) -> list[str]:
        """Mark succeeded and insert ``children`` (``parent_id`` = this job) in the same
        transaction, their delays counted from this completion; returns the children's ids."""
        ...

    def commit_continuations(self, job_id: str, children: Sequence[NewJob], error: str | None) -> list[str] | None:
        """Record a re-run of the ``continuations`` of succeeded job ``job_id`` whose block
        had raised: in one transaction, its ``continuation_error`` becomes ``error`` and,
        when ``error`` is ``None``, ``children`` are inserted as its children (delays counted
        from now). Returns their ids, or ``None`` (changing nothing) when the job no longer
        has a continuation error (another re-run committed first)."""
        ...

    def retry(
        self, job_id: str, token: str, checkpoint: Checkpoint, error: str, delay: float, resumption: bool
    ) -> None:
        """Put a failed try back in the queue after ``delay``: as a resumption (counted,
        no attempt used) or as a new attempt."""
        ...

    def interrupt(self, job_id: str, token: str, checkpoint: Checkpoint) -> None:
        """Save progress and put the job back in the queue at once, as a resumption."""
        ...

    def fail(self, job_id: str, token: str, checkpoint: Checkpoint, error: str, discard: bool = False) -> None:
        """Mark ``failed`` (or ``discarded``) for good, keeping progress and the error."""
        ...

    def release(self, job_id: str, token: str) -> None:
        """Give a running job back to the queue (worker shutting down): its next run is a
        resumption if it saved progress, else an attempt."""
        ...

    def complete_many(self, done: Sequence[Completion]) -> set[str]:
        """Mark many jobs succeeded (none with continuations) in one transaction, each row
        guarded by its lease: a busy worker's successes share one commit. Returns the ids
        whose lease was lost; those are left as they are, exactly as ``complete`` would."""
        ...

    def unclaim(self, leases: Sequence[tuple[str, str]]) -> None:
        """Give back jobs that were claimed but never started (a stopping worker's prefetched
        jobs), as if they had not been claimed: no attempt is used."""
        ...

    def reap_expired(self) -> int:
        """Take back jobs whose lease expired (their worker died); returns how many. Each
        resumes if its execution saved progress, else is retried, or fails with
        ``worker lost: lease expired`` once its attempts are used up."""
        ...

    def advance_waiting(self, seconds: float, queues: Sequence[str] | None) -> int:
        """Make the enqueued jobs of ``queues`` that are not yet due ``seconds`` sooner, as if
        that much time had passed for them (``onward.testing.drain(until=...)``); returns how
        many moved."""
        ...

    # -- waiting ------------------------------------------------------------------------
    def next_ready_in(self, queues: Sequence[str] | None) -> float | None:
        """Seconds until the next enqueued job of ``queues`` is ready (<= 0: now), or None."""
        ...

    def wait_for_jobs(self, queues: Sequence[str] | None, timeout: float, wake: threading.Event) -> None:
        """Block up to ``timeout`` seconds, returning early when ``wake`` is set or when new
        jobs may be ready (another process committed)."""
        ...

    def add_listener(self, wake: threading.Event) -> None:
        """Set ``wake`` whenever this process enqueues or re-enqueues a job."""
        ...

    def remove_listener(self, wake: threading.Event) -> None: ...

    # -- schedules ------------------------------------------------------------------------
    def declare_schedules(
        self, declared: Sequence[ScheduleDeclaration], worker_id: str | None, start: float | None
    ) -> list[ScheduleState]:
        """Store each schedule, or refresh the settings of one already stored. A schedule
        new to the store ticks from ``start`` (epoch seconds; default the store's now): its
        first tick is the first one after it. With ``worker_id``, record that a live worker
        declares the schedules now. Returns the stored states, in order, each with the
        declaration found before this one."""
        ...

    def undeclare_schedules(self, keys: Sequence[str], worker_id: str) -> None:
        """Worker ``worker_id`` stops: of these schedules, those it was the last to declare
        are no longer declared by a running worker."""
        ...

    def record_ticks(self, plans: Sequence[TickPlan]) -> list[TickOutcome]:
        """Apply each plan whose schedule is not paused and is still at ``plan.after``, in one
        transaction: each tick is recorded (unique per schedule and tick) with its job,
        inserted only if the tick was new, and ``ticked_through`` moves to ``plan.through``.
        Returns one outcome per plan, in order."""
        ...


class AdminStore(Protocol):
    """What reading jobs and operating on them ask of a store (``onward.admin``)."""

    # -- reading ------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord:
        """The job's record; ``KeyError`` for an unknown id."""
        ...

    def list_jobs(self, where: JobFilter) -> list[JobRecord]:
        """Jobs matching every given field of ``where``, newest first (by enqueue order),
        at most ``where.limit``. ``before`` (a job id) returns only jobs enqueued before that
        one: keyset paging, as fast on page 1000 as on page 1 (an unknown ``before`` id
        returns nothing). ``id_prefix`` matches ids starting with that text."""
        ...

    # -- administration ---------------------------------------------------------------------
    # These serve operators, not workers. Each one is a single guarded statement or short
    # transaction, and stays fast on a table of millions of jobs (the filters and counts
    # below are backed by indexes).

    def now(self) -> float:
        """The store's current time, epoch seconds (its clock, or the database's)."""
        ...

    def count_jobs(self) -> list[StateCount]:
        """Job counts grouped by queue and state; pairs with no job are left out."""
        ...

    def ready_by_queue(self) -> list[QueueReady]:
        """For each queue with ready jobs: how many, and the oldest due time (through the
        index of waiting jobs)."""
        ...

    def count_continuation_failed(self) -> int:
        """How many succeeded jobs have a ``continuation_error`` (read through an index)."""
        ...

    def finished_per_minute(self, minutes: int) -> list[FinishedCount]:
        """Jobs that finished (succeeded, failed or discarded) in each of the last
        ``minutes`` 60-second windows ending at the store's now, per state, by
        ``finished_at``. Windows and states with no job are left out."""
        ...

    def limit_state(self, job_id: str) -> LimitState | None:
        """The limits of the job's key now (``None`` for a job without limits); ``KeyError``
        for an unknown id."""
        ...

    def held_by_key(self) -> list[HeldCount]:
        """For each limit key with held jobs: how many are held and how many of the key run."""
        ...

    def retry_failed_job(self, job_id: str) -> bool:
        """Put a ``failed`` job (or one in another state that allows an operator's retry, see
        ``lifecycle.ACTIONS``) back in the queue to run now, like re-running it by unique
        key: its attempts start again from zero, its progress (completed steps, cursor,
        state) and resumptions are kept, its last error stays for the record. Returns
        ``False`` (changing nothing) when its state allows no retry or when another job with
        its unique key is enqueued or running; ``KeyError`` for an unknown id."""
        ...

    def discard_job(self, job_id: str) -> bool:
        """Mark an ``enqueued`` or ``failed`` job ``discarded`` (it will never run). Returns
        ``False`` (changing nothing) in any other state; ``KeyError`` for an unknown id."""
        ...

    def list_schedules(self) -> list[ScheduleRecord]:
        """Every stored schedule, by key, with the state of its latest job."""
        ...

    def set_schedule_paused(self, key: str, paused: bool) -> bool:
        """Pause or resume the schedule ``key``; ``False`` if the store has no such schedule.
        Resuming starts again from the store's now: the paused time is not caught up."""
        ...

    def purge_finished(self, states: Sequence[str], finished_before: float, limit: int) -> int:
        """Delete at most ``limit`` jobs in ``states`` (finished states only) whose
        ``finished_at`` is before ``finished_before`` (epoch seconds), oldest first, in one
        short transaction; returns how many were deleted. Children of a purged job keep
        their ``parent_id``."""
        ...


@dataclass(frozen=True, slots=True)
class QueueReady:
    """The jobs of ``queue`` ready to run now (due, not running): how many, and when the one
    due first became due (epoch seconds)."""

    queue: str
    ready: int
    oldest_due: float


@runtime_checkable
class Store(WorkerStore, AdminStore, Protocol):
    """A place where jobs live. Implementations: ``onward.stores.sqlite.SQLiteStore`` and
    ``onward.stores.postgres.PostgresStore``."""

    url: str

    def close(self) -> None:
        """Release connections; any later use raises ``StoreClosed``."""
        ...
