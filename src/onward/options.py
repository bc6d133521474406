"""``Job.set(...)``: the options of one enqueue, checked when they are given, and the limits
every store shares (API §9): the range of a priority, the rules of a queue name, the range of
a time. A value outside them is refused here, the same on every store, before anything is
stored."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from onward.records import EARLIEST, EARLIEST_TS, LATEST, LATEST_TS

__all__ = [
    "MAX_PRIORITY",
    "MAX_QUEUE_LENGTH",
    "MIN_PRIORITY",
    "Options",
    "check_priority",
    "check_queue",
    "check_run_at",
    "seconds",
    "time_limit",
]

MIN_PRIORITY = -(2**31)
MAX_PRIORITY = 2**31 - 1
MAX_QUEUE_LENGTH = 200
#: The largest ``concurrency`` (threads in one worker process) and the longest lease or
#: shutdown timeout (a week) a worker accepts.
MAX_CONCURRENCY = 10_000
MAX_TIMEOUT = 7 * 86400.0
#: The longest wait: from now to :data:`onward.records.LATEST`, with a year to spare so a
#: continuation's wait (counted from its parent's completion) stays in range too.
_YEAR = 366 * 86400.0


def seconds(wait: timedelta | float | int | None, what: str = "wait") -> float:
    """``wait`` (a ``timedelta`` or seconds) as seconds; ``ValueError`` naming ``what`` when it
    is not a number, negative, NaN, or so long that the time it names cannot be stored."""
    if wait is None:
        return 0.0
    if isinstance(wait, timedelta):
        value = wait.total_seconds()
    elif isinstance(wait, (int, float)) and not isinstance(wait, bool):
        try:
            value = float(wait)
        except OverflowError:
            value = math.inf
    else:
        raise ValueError(f"{what} must be a timedelta or seconds, got {wait!r}")
    if math.isnan(value):
        raise ValueError(f"{what} must be a number of seconds, got NaN")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {wait!r}")
    if value > LATEST_TS - time.time() - _YEAR:
        raise ValueError(f"{what} is too long: {wait!r} would end after {LATEST.date()}, the latest time Onward stores")
    return value


def time_limit(value: timedelta | float | int | None, what: str = "timeout") -> float | None:
    """A job's ``timeout`` (a ``timedelta`` or seconds, > 0 and finite) as seconds, or
    ``None``; ``ValueError`` naming ``what`` otherwise."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        limit = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        limit = float(value)
    else:
        raise ValueError(f"{what} must be a timedelta or seconds, got {value!r}")
    if not math.isfinite(limit) or limit <= 0:
        raise ValueError(f"{what} must be a finite number of seconds > 0, got {value!r}")
    return limit


def check_run_at(when: object, what: str = "wait_until") -> float:
    """An aware ``datetime`` inside the times Onward stores, as epoch seconds."""
    if not isinstance(when, datetime):
        raise ValueError(f"{what} must be an aware datetime, got {when!r}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime (with a timezone), got naive {when!r}")
    try:
        stamp = when.timestamp()
    except (OverflowError, ValueError):
        stamp = math.nan
    if not EARLIEST_TS <= stamp <= LATEST_TS:
        raise ValueError(
            f"{what} {when.isoformat()} is out of range: Onward stores times from {EARLIEST.date()} "
            f"to {LATEST.date()} (UTC)"
        )
    return stamp


def check_priority(priority: object, what: str = "priority") -> int:
    """``priority`` if it is an int in ``MIN_PRIORITY..MAX_PRIORITY``, else ``ValueError``."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValueError(f"{what} must be an int, got {priority!r}")
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        shown = repr(priority) if priority.bit_length() < 200 else f"an int of {priority.bit_length()} bits"
        raise ValueError(f"{what} must be between {MIN_PRIORITY} and {MAX_PRIORITY}, got {shown}")
    return priority


def check_queue(queue: object, what: str = "queue") -> str:
    """``queue`` if it is a valid queue name, else ``ValueError`` saying why: empty, longer
    than ``MAX_QUEUE_LENGTH`` characters, holding a control character or a lone surrogate."""
    if not isinstance(queue, str) or not queue:
        raise ValueError(f"{what} must be a non-empty str, got {queue!r}")
    if len(queue) > MAX_QUEUE_LENGTH:
        raise ValueError(f"{what} must be at most {MAX_QUEUE_LENGTH} characters, got {len(queue)}: {queue[:40]!r}...")
    for i, char in enumerate(queue):
        point = ord(char)
        if point < 32 or 127 <= point < 160:
            raise ValueError(f"{what} {queue!r} holds the control character {char!r} at index {i}")
        if 0xD800 <= point < 0xE000:
            raise ValueError(f"{what} {queue!r} holds the lone surrogate {char!r} at index {i}")
    return queue


@dataclass(frozen=True)
class Options:
    """What ``Job.set(...)`` chose: schedule, queue, priority, ``fresh`` and ``timeout``."""

    delay: float = 0.0
    run_at: float | None = None
    queue: str | None = None
    priority: int | None = None
    fresh: bool = False
    timeout: float | None = None

    @classmethod
    def build(
        cls,
        wait: timedelta | float | None = None,
        wait_until: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
        fresh: bool = False,
        timeout: timedelta | float | None = None,
    ) -> Options:
        if wait is not None and wait_until is not None:
            raise ValueError("give wait or wait_until, not both")
        run_at = None if wait_until is None else check_run_at(wait_until)
        if queue is not None:
            check_queue(queue)
        if priority is not None:
            check_priority(priority)
        return cls(seconds(wait), run_at, queue, priority, bool(fresh), time_limit(timeout))


NO_OPTIONS = Options()
