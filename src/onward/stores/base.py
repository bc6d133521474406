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
from typing import Any, Protocol, runtime_checkable

from onward.lifecycle import CancelEffect
from onward.records import BatchRecord, HeldCount, JobRecord, LimitState, ScheduleRecord
from onward.stores.job_values import (
    Checkpoint,
    Claimed,
    Completion,
    FinishedCount,
    JobFilter,
    NewBatch,
    NewJob,
    PausedQueue,
    QueueReady,
    Renewal,
    StateCount,
    TakenBack,
)
from onward.stores.schedule_values import ScheduleDeclaration, ScheduleState, TickOutcome, TickPlan

__all__ = [
    "AdminStore",
    "Checkpoint",
    "Claimed",
    "Completion",
    "FinishedCount",
    "Inserter",
    "JobFilter",
    "NewBatch",
    "NewJob",
    "PausedQueue",
    "QueueReady",
    "Renewal",
    "ScheduleDeclaration",
    "ScheduleState",
    "StateCount",
    "Store",
    "TakenBack",
    "TickOutcome",
    "TickPlan",
    "WorkerStore",
]


class Inserter(Protocol):
    """What inserts jobs (and batches, as ``enqueue`` does) into a transaction a caller
    holds open; returns the ids as ``enqueue`` does."""

    def __call__(self, jobs: Sequence[NewJob], batches: Sequence[NewBatch] = ()) -> list[str]: ...


class WorkerStore(Protocol):
    """What enqueueing and running jobs ask of a store (``job``, ``execution``, ``worker``).

    Using a closed store raises :class:`onward.errors.StoreClosed`.
    """

    url: str  # the URL it was opened with, password masked

    # -- enqueueing -------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob], batches: Sequence[NewBatch] = ()) -> list[str]:
        """Insert jobs (and ``batches`` with their members) in one transaction; returns
        their ids in order, then each batch's members' ids. A job whose
        ``unique_key`` names an enqueued or running job yields that job's id instead; one
        whose key names a failed latest job (and not ``fresh``) re-enqueues that job."""
        ...

    def join_transaction(self, connection: Any) -> Inserter:
        """Prepare to enqueue through ``connection``, inside the transaction the caller holds
        open on it (``onward.transaction``): returns the function that inserts jobs (and
        batches, as :meth:`enqueue` does) there, so
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

    def renew(self, leases: Sequence[tuple[str, str]], lease_timeout: float) -> Renewal:
        """``heartbeat``, also returning the jobs whose cancellation was requested."""
        ...

    def cancel_running(self, job_id: str, token: str, checkpoint: Checkpoint, error: str | None = None) -> None:
        """End a running job as ``cancelled`` (its execution noticed a cancellation request),
        keeping its progress (and ``error``, when it ended by raising)."""
        ...

    def add_cancel_watcher(self, watcher: Callable[[str], None]) -> None:
        """Call ``watcher(job_id)`` when this store hears of a cancellation request for a
        running job before the next heartbeat would (a ``NOTIFY``, a cancel made in this
        process). Heartbeats report every request anyway; this only makes it sooner."""
        ...

    def remove_cancel_watcher(self, watcher: Callable[[str], None]) -> None: ...

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
        batches: Sequence[NewBatch] = (),
        *,
        member: bool = False,
    ) -> list[str]:
        """Mark succeeded and insert ``children`` (``parent_id`` = this job) and ``batches``
        (opened in ``continuations``) in the same transaction, their delays counted from this
        completion; returns the children's ids, then the batches' members' ids. A ``member``
        of a batch may enqueue its batch's callbacks in that transaction: the store then
        wakes this process's workers, as for children."""
        ...

    def commit_continuations(
        self, job_id: str, children: Sequence[NewJob], error: str | None, batches: Sequence[NewBatch] = ()
    ) -> list[str] | None:
        """Record a re-run of the ``continuations`` of succeeded job ``job_id`` whose block
        had raised: in one transaction, its ``continuation_error`` becomes ``error`` and,
        when ``error`` is ``None``, ``children`` are inserted as its children (delays counted
        from now), and ``batches`` (opened in the block) with their members. Returns their
        ids (the children's, then the members'), or ``None`` (changing nothing) when the job
        no longer has a continuation error (another re-run committed first)."""
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

    def fail(
        self,
        job_id: str,
        token: str,
        checkpoint: Checkpoint,
        error: str,
        discard: bool = False,
        *,
        member: bool = False,
    ) -> None:
        """Mark ``failed`` (or ``discarded``) for good, keeping progress and the error (for a
        batch ``member``, see :meth:`complete`)."""
        ...

    def release(self, job_id: str, token: str) -> None:
        """Give a running job back to the queue (worker shutting down): its next run is a
        resumption if it saved progress, else an attempt."""
        ...

    def complete_many(self, done: Sequence[Completion]) -> set[str]:
        """Mark many jobs succeeded in one transaction, each row guarded by its lease, and
        insert the continuations of those written (their delays counted from the success):
        a busy worker's successes share one commit. Returns the ids whose lease was lost;
        those are left as they are and their continuations are not inserted, exactly as
        ``complete`` would."""
        ...

    def unclaim(self, leases: Sequence[tuple[str, str]]) -> None:
        """Give back jobs that were claimed but never started (a stopping worker's prefetched
        jobs), as if they had not been claimed: no attempt is used."""
        ...

    def reap_expired(self, taken: Callable[[TakenBack], None] | None = None) -> int:
        """Take back jobs whose lease expired (their worker died); returns how many. Each
        resumes if its execution saved progress, else is retried, or fails with
        ``worker lost: lease expired`` once its attempts are used up. ``taken`` is called
        with each job taken back, once the transaction committed."""
        ...

    def take_over(self, worker_id: str, ran: Sequence[tuple[str, str]], succeeded: Sequence[Completion]) -> int:
        """Take back at once, in one transaction, the running jobs of the worker
        ``worker_id``, whose process is known to be dead: ``succeeded`` (each guarded by its
        lease) are committed as successes; the jobs of ``ran`` (``(id, lease token)`` pairs:
        it started them under those leases) are decided
        as after a lost lease (``worker lost: its process died``); every other job it held
        never started and goes back to the queue without using an attempt. Returns how many
        jobs it changed."""
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

    def get_batch(self, batch_id: str) -> BatchRecord:
        """The batch's record; ``KeyError`` for an unknown id."""
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

    def cancel_job(self, job_id: str) -> CancelEffect:
        """Cancel job ``job_id``: an ``enqueued`` one becomes ``cancelled`` at once; a
        ``running`` one gets ``cancel_requested_at`` (its execution ends at its next safe
        point); a finished one is left as it is. Returns which happened (decided by
        ``lifecycle.cancel_effect`` on the state found); ``KeyError`` for an unknown id."""
        ...

    def paused_queues(self) -> list[PausedQueue]:
        """The queues that are paused, by name."""
        ...

    def set_queue_paused(self, queue: str, paused: bool) -> None:
        """Pause ``queue`` (no worker claims from it; it need not have jobs) or resume it."""
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


@runtime_checkable
class Store(WorkerStore, AdminStore, Protocol):
    """A place where jobs live. Implementations: ``onward.stores.sqlite.SQLiteStore`` and
    ``onward.stores.postgres.PostgresStore``."""

    url: str

    def close(self) -> None:
        """Release connections; any later use raises ``StoreClosed``."""
        ...
