"""Schedules for operators: listing them with their next and last tick, pausing and resuming.

Part of :class:`onward.admin.Admin` (``onward schedules``, the dashboard's Schedules page)::

    ops = Admin(onward.connect())
    for s in ops.schedules():
        print(s.key, s.expression, s.next_tick, s.last_job_state, s.paused, s.live)
    ops.pause_schedule("nightly-report")

The next tick is computed here from the stored expression and time zone, so the process
listing schedules need not import the modules that declare them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime

from onward.errors import OnwardError
from onward.records import ScheduleRecord
from onward.schedules import LIVE_WITHIN, describe
from onward.stores.base import Store
from onward.ticks import TickRule

__all__ = ["ScheduleAdmin", "ScheduleNotFound", "ScheduleView"]


class ScheduleNotFound(OnwardError, KeyError):
    """No schedule has this key in the store. Also a ``KeyError``."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "schedule not found"


@dataclass(frozen=True, slots=True)
class ScheduleView:
    """A stored schedule as operators see it.

    ``expression`` reads like ``0 3 * * * (Europe/Paris)`` or ``every 30s``; ``next_tick`` is
    the first tick after the last one dealt with (``None`` while paused; in the past when no
    worker has run the schedule since); ``live`` tells whether a running worker declared the
    schedule within the last :data:`~onward.schedules.LIVE_WITHIN` seconds.
    """

    record: ScheduleRecord
    expression: str
    next_tick: datetime | None
    live: bool

    @property
    def key(self) -> str:
        return self.record.key

    @property
    def job_class(self) -> str:
        return self.record.job_class

    @property
    def paused(self) -> bool:
        return self.record.paused

    @property
    def last_tick(self) -> datetime | None:
        return self.record.last_tick

    @property
    def last_job_id(self) -> str | None:
        return self.record.last_job_id

    @property
    def last_job_state(self) -> str | None:
        return self.record.last_job_state


class ScheduleAdmin:
    """The schedule side of :class:`onward.admin.Admin`."""

    store: Store

    def schedules(self) -> list[ScheduleView]:
        """Every schedule in the store, by key."""
        now = self.store.now()
        return [_view(record, now) for record in self.store.list_schedules()]

    def schedule(self, key: str) -> ScheduleView:
        """The schedule ``key``; :class:`ScheduleNotFound` if the store has none."""
        for view in self.schedules():
            if view.key == key:
                return view
        raise ScheduleNotFound(f"no schedule with key {key!r}")

    def pause_schedule(self, key: str) -> ScheduleView:
        """Pause ``key``: it enqueues nothing until resumed."""
        return self._set_paused(key, True)

    def resume_schedule(self, key: str) -> ScheduleView:
        """Resume ``key`` from now on: the ticks of the paused time are not enqueued."""
        return self._set_paused(key, False)

    def _set_paused(self, key: str, paused: bool) -> ScheduleView:
        if not self.store.set_schedule_paused(key, paused):
            raise ScheduleNotFound(f"no schedule with key {key!r}")
        return self.schedule(key)


def _view(record: ScheduleRecord, now: float) -> ScheduleView:
    expression = describe(record.cron, record.every, record.timezone)
    next_tick = None
    if not record.paused:
        rule = _rule(record.cron, record.every, record.timezone)
        try:
            if rule is not None:
                next_tick = datetime.fromtimestamp(rule.next_after(record.ticked_through.timestamp()), UTC)
        except LookupError:
            next_tick = None
    declared = record.declared_at
    live = declared is not None and declared.timestamp() >= now - LIVE_WITHIN
    return ScheduleView(record, expression, next_tick, live)


@functools.lru_cache(maxsize=256)
def _rule(cron: str | None, every: float | None, timezone: str) -> TickRule | None:
    """The ticks of a stored schedule; ``None`` if this Onward cannot read them."""
    try:
        if cron is not None:
            return TickRule(cron=cron, zone=timezone)
        if every is not None:
            return TickRule(every_us=round(every * 1_000_000), zone=timezone)
    except (ValueError, LookupError):
        return None
    return None
