"""When a schedule ticks: ``every=`` intervals and cron expressions in an IANA time zone.

Pure computation, no I/O. Instants are epoch seconds (floats). ``every=`` ticks at whole
multiples of the interval since the Unix epoch, computed on whole microseconds so that every
process finds the very same instants. A cron expression is matched against the wall clock
of its zone (the cron library sees naive local times), then each matching wall-clock time is
placed on the time line:

- a time that does not exist that day (the clocks spring forward over it) ticks once, at
  the instant the clocks jump (02:30 on a day that skips 02:00-03:00 ticks at 03:00 new time);
  several such times, and the first existing time after the jump, are that one tick;
- a time that occurs twice (the clocks fall back) ticks once, at its first occurrence.

The cron library (croniter) is imported only when a cron expression is used.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ALIASES", "TickRule", "parse_zone", "split_cron"]

#: The ``@`` names a cron expression may use, as the five fields they stand for.
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

#: Wall-clock candidates examined for one tick before giving up (a cron expression that
#: matches every second examines at most 7,200 of them in a repeated hour).
_MAX_CANDIDATES = 100_000
_US = 1_000_000


def parse_zone(name: object) -> ZoneInfo:
    """The zone named ``name`` (an IANA name such as ``Europe/Paris``); ``ValueError`` if unknown."""
    if isinstance(name, ZoneInfo):
        return name
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"the timezone must be an IANA name such as 'Europe/Paris', got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown timezone {name!r} (an IANA name such as 'Europe/Paris' is expected)") from exc


def split_cron(expression: object) -> tuple[str, bool]:
    """``expression`` normalised (single spaces, ``@`` names expanded) and whether it has a
    leading seconds field; ``ValueError`` for anything but 5 or 6 fields or a known ``@`` name."""
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError(f"cron must be a non-empty str, got {expression!r}")
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise ValueError(f"unknown cron expression {expression!r}; the @ names are {', '.join(ALIASES)}")
        return ALIASES[text.lower()], False
    fields = len(text.split(" "))
    if fields not in (5, 6):
        raise ValueError(
            f"cron expression {expression!r} has {fields} fields; write 5 (minute hour day month weekday)"
            " or 6 with leading seconds"
        )
    return text, fields == 6


class TickRule:
    """The instants a schedule ticks at: ``every`` (whole microseconds, > 0) or ``cron`` in ``zone``."""

    def __init__(self, *, every_us: int | None = None, cron: str | None = None, zone: str | ZoneInfo = "UTC") -> None:
        if (every_us is None) == (cron is None):
            raise ValueError("give exactly one of cron and every")
        self.zone = parse_zone(zone)
        self.every_us = every_us
        self.cron: str | None = None
        self._iter: Any = None
        self._lock = threading.Lock()
        if every_us is not None:
            if every_us <= 0:
                raise ValueError(f"every must be positive, got {every_us / _US} seconds")
            return
        self.cron, seconds = split_cron(cron)
        self._iter = _cron_iterator(self.cron, seconds)
        try:
            self.next_after(datetime.now(UTC).timestamp())
        except LookupError:
            raise ValueError(f"cron expression {cron!r} never matches a date") from None

    def __repr__(self) -> str:
        if self.every_us is not None:
            return f"TickRule(every={timedelta(microseconds=self.every_us)})"
        return f"TickRule(cron={self.cron!r}, zone={self.zone.key!r})"

    # -- the next tick ------------------------------------------------------------------------
    def next_after(self, t: float) -> float:
        """The first tick strictly after the instant ``t`` (epoch seconds)."""
        if self.every_us is not None:
            k = math.floor(round(t * _US) / self.every_us) + 1
            return k * self.every_us / _US
        zone = self.zone
        whole = math.floor(t)
        start = datetime.fromtimestamp(whole, zone).replace(tzinfo=None)
        with self._lock:
            it = self._iter
            it.set_current(start, force=True)
            for _ in range(_MAX_CANDIDATES):
                try:
                    wall = it.get_next(datetime)
                except Exception as exc:  # croniter: no matching date within its search horizon
                    raise LookupError(f"cron expression {self.cron!r} matches no date after {start}") from exc
                instant = wall_to_instant(wall, zone)
                if instant > t:
                    return instant
        raise LookupError(f"cron expression {self.cron!r}: no tick found after {start}")

    # -- the ticks of a span --------------------------------------------------------------------
    def recent(self, after: float, until: float, limit: int) -> list[float]:
        """The most recent ``limit`` ticks in ``(after, until]``, oldest first."""
        if limit < 1 or until <= after:
            return []
        if self.every_us is not None:
            last = math.floor(round(until * _US) / self.every_us)
            first = math.floor(round(after * _US) / self.every_us) + 1
            first = max(first, last - limit + 1)
            return [k * self.every_us / _US for k in range(first, last + 1)]
        # Walk forward from a window before ``until``, doubling it until it holds ``limit``
        # ticks or reaches ``after``: a long gap costs about twice the ticks kept.
        window = max(1.0, 2.0 * (self.next_after(until) - until))
        while True:
            start = max(after, until - window)
            found = self._between(start, until, limit)
            if len(found) >= limit or start <= after:
                return found
            window *= 4.0

    def _between(self, start: float, until: float, limit: int) -> list[float]:
        kept: deque[float] = deque(maxlen=limit)
        t = start
        while True:
            t = self.next_after(t)
            if t > until:
                return list(kept)
            kept.append(t)


def _cron_iterator(expression: str, seconds: bool) -> Any:
    """A croniter over naive wall-clock times; ``ValueError`` naming what is wrong."""
    from croniter import CroniterError, croniter  # the cron library: only when cron= is used

    try:
        it = croniter(expression, datetime(2000, 1, 1), second_at_beginning=seconds)
        valid = croniter.is_valid(expression, second_at_beginning=seconds, strict=True)
    except (CroniterError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"bad cron expression {expression!r}: {exc}") from None
    if not valid:
        raise ValueError(f"cron expression {expression!r} never matches a date")
    return it


def wall_to_instant(wall: datetime, zone: ZoneInfo) -> float:
    """The instant of the naive wall-clock time ``wall`` in ``zone``: its first occurrence
    when it occurs twice, the instant the clocks jump when it does not occur at all."""
    instant = wall.replace(tzinfo=zone, fold=0).timestamp()
    if datetime.fromtimestamp(instant, zone).replace(tzinfo=None) == wall:
        return instant
    return _jump(wall, zone)


def _jump(wall: datetime, zone: ZoneInfo) -> float:
    """The instant the clocks jumped over ``wall`` (a time in a gap): between its readings
    with the offset after the jump (``fold=1``) and before it (``fold=0``)."""
    lo = math.floor(min(wall.replace(tzinfo=zone, fold=1).timestamp(), wall.replace(tzinfo=zone, fold=0).timestamp()))
    hi = math.ceil(max(wall.replace(tzinfo=zone, fold=1).timestamp(), wall.replace(tzinfo=zone, fold=0).timestamp()))
    before = _offset(lo, zone)
    while hi - lo > 1:  # the first second whose offset is the one after the jump
        mid = (lo + hi) // 2
        if _offset(mid, zone) == before:
            lo = mid
        else:
            hi = mid
    return float(hi)


def _offset(t: int, zone: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(t, UTC).astimezone(zone).utcoffset()
