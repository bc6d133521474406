"""``Job.set(...)``: the options of one enqueue, checked when they are given."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Options", "seconds", "time_limit"]


def seconds(wait: timedelta | float | int | None, what: str = "wait") -> float:
    """``wait`` (a ``timedelta`` or seconds) as seconds; ``ValueError`` naming ``what``."""
    if wait is None:
        return 0.0
    if isinstance(wait, timedelta):
        value = wait.total_seconds()
    elif isinstance(wait, (int, float)) and not isinstance(wait, bool):
        value = float(wait)
    else:
        raise ValueError(f"{what} must be a timedelta or seconds, got {wait!r}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {wait!r}")
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
        run_at = None
        if wait_until is not None:
            if not isinstance(wait_until, datetime):
                raise ValueError(f"wait_until must be an aware datetime, got {wait_until!r}")
            if wait_until.tzinfo is None or wait_until.utcoffset() is None:
                raise ValueError(f"wait_until must be an aware datetime (with a timezone), got naive {wait_until!r}")
            run_at = wait_until.timestamp()
        if queue is not None and (not isinstance(queue, str) or not queue):
            raise ValueError(f"queue must be a non-empty str, got {queue!r}")
        if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
            raise ValueError(f"priority must be an int, got {priority!r}")
        return cls(seconds(wait), run_at, queue, priority, bool(fresh), time_limit(timeout))


NO_OPTIONS = Options()
