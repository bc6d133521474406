"""``run_schedules``: what a worker's scheduler does at a given instant, without waiting."""

from __future__ import annotations

from datetime import datetime

from onward import connecting
from onward.duties.scheduler import Scheduler
from onward.handles import JobHandle
from onward.stores.base import Store

__all__ = ["run_schedules"]


def run_schedules(now: datetime, *, store: Store | None = None) -> list[JobHandle]:
    """Do, at the aware datetime ``now``, what a worker's scheduler starting then does with
    the schedules declared in this process: a schedule new to the store starts ticking after
    ``now``; ticks due since a schedule's last tick are enqueued (its ``missed`` policy
    choosing when more than one is due), each exactly once, as by a worker. Returns the
    handles of the jobs enqueued, oldest tick first. The store is the default one unless given."""
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"run_schedules needs an aware datetime (with a timezone), got {now!r}")
    target = store if store is not None else connecting.default()
    ticked = Scheduler(None, at=now.timestamp()).tick(target)
    ticked.sort(key=lambda t: t.tick)
    return [JobHandle(t.job_id, target) for t in ticked]
