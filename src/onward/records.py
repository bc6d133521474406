"""Frozen views of stored jobs: :class:`JobRecord`, :class:`StepRecord` and :class:`State`;
of stored schedules: :class:`ScheduleRecord`; of stored batches: :class:`BatchRecord`.

Stores hand rows to :func:`job_record`; nothing else builds records, and nobody mutates
them. Times are aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from onward import serialization

if TYPE_CHECKING:
    from onward.stores.base import Store


class State(StrEnum):
    """The life-cycle state of a job. Compares equal to its string value."""

    ENQUEUED = "enqueued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DISCARDED = "discarded"
    CANCELLED = "cancelled"


#: Every state change a store may make. ``enqueued`` covers "waiting to run", "scheduled",
#: "waiting to retry" and "waiting to resume"; failed jobs go back to ``enqueued`` (or straight
#: to ``running`` under ``perform_now``) when re-run by their unique key or by ``retry``, and
#: discarded and cancelled jobs when an operator retries them. A cancellation ends an enqueued
#: job at once and a running one when its execution notices the request.
TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.ENQUEUED: frozenset({State.RUNNING, State.DISCARDED, State.CANCELLED}),
    State.RUNNING: frozenset({State.ENQUEUED, State.SUCCEEDED, State.FAILED, State.DISCARDED, State.CANCELLED}),
    State.FAILED: frozenset({State.ENQUEUED, State.RUNNING, State.DISCARDED}),
    State.SUCCEEDED: frozenset(),
    State.DISCARDED: frozenset({State.ENQUEUED}),
    State.CANCELLED: frozenset({State.ENQUEUED}),
}

FINISHED_STATES = frozenset({State.SUCCEEDED, State.FAILED, State.DISCARDED, State.CANCELLED})


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step of a job as last saved.

    ``status`` is ``"running"`` while an execution is in the step, ``"interrupted"`` when the
    step is in progress but nothing runs it now, and ``"completed"``. ``advanced`` counts
    ``advance``/``set`` calls across all executions.
    """

    name: str
    status: str
    cursor: Any
    advanced: int
    total: int | None
    started_at: datetime | None
    completed_at: datetime | None

    @property
    def progress(self) -> float | None:
        """``min(1, advanced / total)`` when ``total`` is set, 1.0 once completed."""
        if self.status == "completed":
            return 1.0
        if not self.total:
            return None
        return min(1.0, self.advanced / self.total)


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as stored, at the moment it was read."""

    id: str
    job_class: str
    queue: str
    priority: int
    args: list[Any]
    kwargs: dict[str, Any]
    state: State
    attempts: int
    resumptions: int
    scheduled_at: datetime
    enqueued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    continuation_error: str | None
    parent_id: str | None
    children: tuple[str, ...]
    result: Any
    job_state: dict[str, Any]
    steps: list[StepRecord]
    progress: float | None
    unique_key: str | None = None
    lease_expires_at: datetime | None = None
    worker_id: str | None = None
    schedule_key: str | None = None  # the schedule that enqueued this job
    scheduled_for: datetime | None = None  # and the tick it was enqueued for
    cancel_requested_at: datetime | None = None  # when a cancellation was asked for (kept until a retry)
    batch_id: str | None = None  # the batch this job is a member of
    parent_batch_id: str | None = None  # the batch whose callback this job is
    limit_key: str | None = None  # the key its class's concurrency and throttle count per
    _store: Store | None = field(default=None, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def refresh(self) -> JobRecord:
        """Read this job again from the store it came from."""
        if self._store is None:
            raise RuntimeError("this record is not attached to a store")
        return self._store.get(self.id)


#: The earliest and latest times Onward stores (a day inside the range of ``datetime``, so
#: that any time it stores can be shown in any timezone). Enqueueing refuses times outside
#: them; a stored time outside them (written by other means) reads as the nearer bound.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
EARLIEST_TS = EARLIEST.timestamp()
LATEST_TS = LATEST.timestamp()


def to_datetime(value: Any) -> datetime | None:
    """Epoch seconds (SQLite) or a datetime (PostgreSQL) as an aware UTC datetime. Any stored
    value reads: one outside :data:`EARLIEST`..:data:`LATEST` (or not a time at all) reads as
    the nearer bound, so no row can break a reader."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        try:
            value = value.astimezone(UTC)
        except (OverflowError, ValueError):
            return EARLIEST if value.year < 5000 else LATEST
        return value if EARLIEST <= value <= LATEST else EARLIEST if value < EARLIEST else LATEST
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return LATEST
    if EARLIEST_TS <= seconds <= LATEST_TS:
        return datetime.fromtimestamp(seconds, UTC)
    return EARLIEST if seconds < EARLIEST_TS else LATEST  # NaN included (fails both tests)


def decoded(text: str | None) -> Any:
    """A stored JSON column, decoded; its raw text when it cannot be (a row written by other
    means), so that showing a job never fails on its values."""
    try:
        return serialization.from_json(text)
    except (ValueError, TypeError, KeyError, RecursionError):  # SerializationError is a TypeError
        return text


def step_records(steps: Any, job_running: bool) -> list[StepRecord]:
    if not isinstance(steps, list) or not all(isinstance(s, dict) and "name" in s and "status" in s for s in steps):
        return []
    out = []
    for s in steps:
        status = s["status"]
        if status == "running" and not job_running:
            status = "interrupted"
        out.append(
            StepRecord(
                name=s["name"],
                status=status,
                cursor=s.get("cursor"),
                advanced=s.get("advanced", 0),
                total=s.get("total"),
                started_at=to_datetime(s.get("started_at")),
                completed_at=to_datetime(s.get("completed_at")),
            )
        )
    return out


def progress_of(state: State, steps: list[StepRecord]) -> float | None:
    if state == State.SUCCEEDED:
        return 1.0
    for s in steps:
        if s.status != "completed":
            return s.progress
    return None


def job_record(row: Mapping[str, Any], children: tuple[str, ...], store: Store | None) -> JobRecord:
    """Build a record from a stored row (JSON columns as text, times as epoch or datetime)."""
    state = State(row["state"])
    steps = step_records(decoded(row["steps"]) or [], state == State.RUNNING)
    scheduled_at = to_datetime(row["scheduled_at"])
    enqueued_at = to_datetime(row["enqueued_at"])
    assert scheduled_at is not None
    assert enqueued_at is not None
    return JobRecord(
        id=row["id"],
        job_class=row["job_class"],
        queue=row["queue"],
        priority=row["priority"],
        args=decoded(row["args"]),
        kwargs=decoded(row["kwargs"]),
        state=state,
        attempts=row["attempts"],
        resumptions=row["resumptions"],
        scheduled_at=scheduled_at,
        enqueued_at=enqueued_at,
        started_at=to_datetime(row["started_at"]),
        finished_at=to_datetime(row["finished_at"]),
        error=row["error"],
        continuation_error=row["continuation_error"],
        parent_id=row["parent_id"],
        children=children,
        result=decoded(row["result"]),
        job_state=decoded(row["job_state"]) or {},
        steps=steps,
        progress=progress_of(state, steps),
        unique_key=row["unique_key"],
        lease_expires_at=to_datetime(row["lease_expires_at"]) if state == State.RUNNING else None,
        worker_id=row["worker_id"] if state == State.RUNNING else None,
        schedule_key=row["schedule_key"],
        scheduled_for=to_datetime(row["scheduled_for"]),
        cancel_requested_at=to_datetime(row["cancel_requested_at"]),
        batch_id=row["batch_id"],
        parent_batch_id=row["parent_batch_id"],
        limit_key=row["limit_key"],
        _store=store,
    )


# -- batches ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """A batch as stored, at the moment it was read.

    ``state`` is ``"pending"`` while a member is not final, ``"succeeded"`` once every member
    succeeded, ``"finished"`` once every member is final but not all succeeded. ``job_ids``
    are the members in enqueue order, ``callback_ids`` the callbacks enqueued so far.
    """

    id: str
    description: str | None
    state: str
    total: int
    pending: int
    succeeded: int
    failed: int
    discarded: int
    cancelled: int
    created_at: datetime
    finished_at: datetime | None
    job_ids: tuple[str, ...]
    callback_ids: tuple[str, ...]

    @property
    def progress(self) -> float:
        """The share of members that are final (1.0 for a batch without members)."""
        return 1.0 if not self.total else (self.total - self.pending) / self.total


def batch_record(row: Mapping[str, Any], job_ids: tuple[str, ...], callback_ids: tuple[str, ...]) -> BatchRecord:
    """Build a batch record from a stored row (times as epoch or datetime)."""
    created_at = to_datetime(row["created_at"])
    assert created_at is not None
    total, pending, succeeded = row["total"], row["pending"], row["succeeded"]
    state = "pending" if pending > 0 else "succeeded" if succeeded == total else "finished"
    return BatchRecord(
        id=row["id"],
        description=row["description"],
        state=state,
        total=total,
        pending=pending,
        succeeded=succeeded,
        failed=row["failed"],
        discarded=row["discarded"],
        cancelled=row["cancelled"],
        created_at=created_at,
        finished_at=to_datetime(row["finished_at"]) if pending == 0 else None,
        job_ids=job_ids,
        callback_ids=callback_ids,
    )


# -- limits ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitState:
    """A job's limit key as the store sees it now: its class's numbers, how many jobs of the
    key run, the key's starts within the job's throttle window (epoch seconds, oldest first),
    and whether the claim holds the job back (``held_until``, epoch seconds; ``None``: not held)."""

    key: str
    concurrency: int | None
    throttle_limit: int | None
    throttle_per: float | None
    running: int
    starts: tuple[float, ...]
    held_until: float | None


@dataclass(frozen=True, slots=True)
class HeldCount:
    """Jobs of a limit key held back by the claim, and how many of the key run."""

    key: str
    held: int
    running: int


# -- schedules --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A schedule as stored, at the moment it was read.

    ``every`` is in seconds (``None`` for a cron schedule); ``settings`` holds the rest of the
    declaration (``args`` and ``kwargs`` as stored, ``missed``, ``overlap``, ``queue``,
    ``priority``). Every tick up to ``ticked_through`` has been dealt with. ``last_tick`` is the
    latest tick recorded; ``last_tick_skipped`` when it enqueued nothing because the previous
    job was still enqueued or running. ``last_job_id`` is the latest job the schedule
    enqueued, ``last_job_state`` its state (``None`` once purged). ``declared_at`` is when a
    running worker last declared the schedule (``declared_by`` names it).
    """

    key: str
    job_class: str
    cron: str | None
    every: float | None
    timezone: str
    settings: dict[str, Any]
    paused: bool
    paused_at: datetime | None
    first_seen: datetime
    ticked_through: datetime
    last_tick: datetime | None
    last_tick_skipped: bool
    last_job_id: str | None
    last_job_state: str | None
    declared_at: datetime | None
    declared_by: str | None


def schedule_record(row: Mapping[str, Any]) -> ScheduleRecord:
    """Build a schedule record from a stored row (times as epoch or datetime)."""
    first_seen = to_datetime(row["first_seen"])
    ticked_through = to_datetime(row["ticked_through"])
    assert first_seen is not None
    assert ticked_through is not None
    every = row["every"]
    return ScheduleRecord(
        key=row["key"],
        job_class=row["job_class"],
        cron=row["cron"],
        every=None if every is None else float(every),
        timezone=row["timezone"],
        settings=serialization.from_json(row["settings"]) or {},
        paused=bool(row["paused"]),
        paused_at=to_datetime(row["paused_at"]),
        first_seen=first_seen,
        ticked_through=ticked_through,
        last_tick=to_datetime(row["last_tick"]),
        last_tick_skipped=bool(row["last_tick_skipped"]),
        last_job_id=row["last_job_id"],
        last_job_state=row["last_job_state"],
        declared_at=to_datetime(row["declared_at"]),
        declared_by=row["declared_by"],
    )
