"""Concurrency and rate limits per limit key: ``Job.concurrency``, ``Job.throttle`` and
``Job.limit_key``, checked when a class is defined and when a job is enqueued.

The store enforces them when it claims jobs (see ``stores/*/limits.py``); this module only
declares and checks them, without I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

__all__ = ["Limits", "Throttle", "check_class_limits", "check_limit_key", "held_reason"]

#: The longest limit key accepted (keys are stored and shown like queue names).
MAX_KEY_LENGTH = 200


@dataclass(frozen=True, slots=True, init=False)
class Throttle:
    """At most ``limit`` executions start in any sliding window of ``per`` (a ``timedelta``
    or seconds), per limit key."""

    limit: int
    per: float  # seconds

    def __init__(self, limit: int, per: timedelta | float) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TypeError(f"Throttle limit must be an int, got {limit!r}")
        if limit < 1:
            raise ValueError(f"Throttle limit must be positive, got {limit!r}")
        if isinstance(per, timedelta):
            seconds = per.total_seconds()
        elif isinstance(per, (int, float)) and not isinstance(per, bool):
            seconds = float(per)
        else:
            raise TypeError(f"Throttle per must be a timedelta or seconds, got {per!r}")
        if not seconds > 0 or seconds == float("inf"):
            raise ValueError(f"Throttle per must be a positive window, got {per!r}")
        object.__setattr__(self, "limit", limit)
        object.__setattr__(self, "per", seconds)

    def __repr__(self) -> str:
        return f"Throttle({self.limit}, per={self.per:g}s)"


@dataclass(frozen=True, slots=True)
class Limits:
    """What a job row carries: its key and its class's numbers (``None``: no such limit)."""

    key: str
    concurrency: int | None
    throttle_limit: int | None
    throttle_per: float | None


def check_class_limits(cls: type, concurrency: Any, throttle: Any) -> None:
    """``TypeError``/``ValueError`` naming ``cls`` for a bad ``concurrency`` or ``throttle``."""
    name = cls.__qualname__
    if concurrency is not None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int):
            raise TypeError(f"{name}.concurrency must be a positive int or None, got {concurrency!r}")
        if concurrency < 1:
            raise ValueError(f"{name}.concurrency must be a positive int or None, got {concurrency!r}")
        if concurrency > 2**31 - 1:
            raise ValueError(f"{name}.concurrency is too large: {concurrency!r}")
    if throttle is not None and not isinstance(throttle, Throttle):
        raise TypeError(f"{name}.throttle must be an onward.Throttle or None, got {throttle!r}")


def check_limit_key(cls: type, key: Any) -> str:
    """The key ``cls.limit_key`` returned, or ``TypeError``/``ValueError`` naming the class."""
    name = cls.__qualname__
    if not isinstance(key, str):
        raise TypeError(f"{name}.limit_key must return a str, got {key!r}")
    if not key:
        raise ValueError(f"{name}.limit_key must return a non-empty str, got {key!r}")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"{name}.limit_key returned a key longer than {MAX_KEY_LENGTH} characters: {key[:40]!r}...")
    if any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in key):
        raise ValueError(f"{name}.limit_key returned a key with control characters or lone surrogates: {key!r}")
    return key


def held_reason(
    key: str,
    concurrency: int | None,
    running: int,
    throttle_limit: int | None,
    throttle_per: float | None,
    started: int,
    free_at: str | None,
) -> str | None:
    """Why a ready job of ``key`` waits, in words (``None``: its key has room)."""
    if concurrency is not None and running >= concurrency:
        return f"held by concurrency limit of {key}: {running}/{concurrency} running"
    if throttle_limit is not None and throttle_per is not None and started >= throttle_limit:
        until = f", throttled until {free_at}" if free_at else ""
        return f"held by throttle of {key}: {started}/{throttle_limit} started in the last {throttle_per:g}s{until}"
    return None
