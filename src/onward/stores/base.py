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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

from onward.records import JobRecord


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to insert. ``run_at`` (epoch seconds) wins over ``delay`` (seconds from now;
    for continuations, from the parent's completion)."""

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


#: The columns a store's claim returns first, in this order (see :func:`claimed_from_row`).
CLAIMED_COLUMNS = (
    "id, job_class, queue, priority, args, kwargs, attempts, resumptions, steps, job_state,"
    " lease_token, resume_pending, parent_id, unique_key"
)


def claimed_from_row(row: Sequence[Any]) -> Claimed:
    """A :class:`Claimed` from a row that starts with ``CLAIMED_COLUMNS``: read by position,
    several times faster than by name, for every claimed job."""
    return Claimed(
        id=row[0],
        job_class=row[1],
        queue=row[2],
        priority=row[3],
        args=row[4],
        kwargs=row[5],
        attempts=row[6],
        resumptions=row[7],
        steps=row[8],
        job_state=row[9],
        lease_token=row[10],
        resumed=bool(row[11]),
        parent_id=row[12],
        unique_key=row[13],
    )


class Checkpoint(NamedTuple):
    """Progress to save: the encoded steps and ``self.state``; ``progressed`` tells whether
    this execution changed anything since it started (a reclaim is then a resumption)."""

    steps: str | None
    job_state: str | None
    progressed: bool


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

    def where_sql(
        self, mark: str, alias: str = "", *, state_sql: Mapping[str, str] | None = None
    ) -> tuple[str, list[Any]]:
        """The ``WHERE`` clause (``""`` when nothing is filtered) and its parameters, with
        ``mark`` as the driver's placeholder and ``alias`` the jobs table's alias. Columns come
        from this code only; every value is a parameter, except a state found in
        ``state_sql``: the store's own constant condition for it (SQLite uses a partial index
        only when the query spells out its condition). The id prefix becomes a range, so the
        unique index on ``id`` serves it."""
        col = f"{alias}." if alias else ""
        clauses: list[str] = []
        params: list[Any] = []
        state = self.state
        if state_sql is not None and state is not None and state in state_sql:
            clauses.append(state_sql[state])
            state = None
        for column, value in (
            ("state", state),
            ("queue", self.queue),
            ("job_class", self.job_class),
            ("parent_id", self.parent_id),
        ):
            if value is not None:
                clauses.append(f"{col}{column} = {mark}")
                params.append(value)
        if self.before is not None:
            clauses.append(f"{col}seq < (SELECT b.seq FROM onward_jobs AS b WHERE b.id = {mark})")
            params.append(self.before)
        if self.id_prefix:
            prefix = self.id_prefix
            clauses.append(f"{col}id >= {mark} AND {col}id < {mark}")
            params.extend((prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


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


@runtime_checkable
class Store(Protocol):
    """A place where jobs live. Implementations: ``sqlite.SQLiteStore``, ``postgres.PostgresStore``."""

    url: str  # the URL it was opened with, password masked

    # -- enqueueing -------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob]) -> list[str]:
        """Insert jobs in one transaction; returns their ids in order. A job whose
        ``unique_key`` names an enqueued or running job yields that job's id instead; one
        whose key names a failed latest job (and not ``fresh``) re-enqueues that job."""
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

    def reap_expired(self) -> int:
        """Take back jobs whose lease expired (their worker died); returns how many. Each
        resumes if its execution saved progress, else is retried, or fails with
        ``worker lost: lease expired`` once its attempts are used up."""
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

    # -- administration (used by onward.admin: the CLI and the dashboard) -------------------
    # These serve operators, not workers. Each one is a single guarded statement or short
    # transaction, and stays fast on a table of millions of jobs (the filters and counts
    # below are backed by indexes).

    def now(self) -> float:
        """The store's current time, epoch seconds (its clock, or the database's)."""
        ...

    def count_jobs(self) -> list[StateCount]:
        """Job counts grouped by queue and state; pairs with no job are left out."""
        ...

    def finished_per_minute(self, minutes: int) -> list[FinishedCount]:
        """Jobs that finished (succeeded, failed or discarded) in each of the last
        ``minutes`` 60-second windows ending at the store's now, per state, by
        ``finished_at``. Windows and states with no job are left out."""
        ...

    def retry_failed_job(self, job_id: str) -> bool:
        """Put a ``failed`` job back in the queue to run now, like re-running it by unique
        key: its attempts start again from zero, its progress (completed steps, cursor,
        state) and resumptions are kept, its last error stays for the record. Returns
        ``False`` (changing nothing) when the job is not ``failed`` or when another job with
        its unique key is enqueued or running; ``KeyError`` for an unknown id."""
        ...

    def discard_job(self, job_id: str) -> bool:
        """Mark an ``enqueued`` or ``failed`` job ``discarded`` (it will never run). Returns
        ``False`` (changing nothing) in any other state; ``KeyError`` for an unknown id."""
        ...

    def purge_finished(self, states: Sequence[str], finished_before: float, limit: int) -> int:
        """Delete at most ``limit`` jobs in ``states`` (finished states only) whose
        ``finished_at`` is before ``finished_before`` (epoch seconds), oldest first, in one
        short transaction; returns how many were deleted. Children of a purged job keep
        their ``parent_id``."""
        ...

    def close(self) -> None:
        """Release connections; any later use raises ``OnwardError``."""
        ...
