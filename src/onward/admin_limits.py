"""Operators' view of limits: why a ready job waits, and the held jobs per limit key."""

from __future__ import annotations

from datetime import UTC, datetime

from onward.limits import held_reason
from onward.records import HeldCount, JobRecord, State
from onward.stores.base import Store

__all__ = ["HeldCount", "LimitAdmin"]


class LimitAdmin:
    """Mixed into :class:`onward.admin.Admin`."""

    store: Store

    def waiting_reason(self, record: JobRecord) -> str | None:
        """Why a ready job waits, e.g. ``held by concurrency limit of account:7: 1/1 running``
        (``None`` for a job that is not ready, has no limits, or whose key has room now)."""
        if record.state != State.ENQUEUED or record.limit_key is None:
            return None
        now = self.store.now()
        if record.scheduled_at.timestamp() > now:
            return None
        try:
            limits = self.store.limit_state(record.id)
        except KeyError:
            return None
        if limits is None:
            return None
        free_at = None
        window, most = limits.throttle_per, limits.throttle_limit
        if window is not None and most is not None and len(limits.starts) >= most:
            at = limits.starts[len(limits.starts) - most] + window
            free_at = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
        return held_reason(
            limits.key,
            limits.concurrency,
            limits.running,
            limits.throttle_limit,
            limits.throttle_per,
            len(limits.starts),
            free_at,
        )

    def held_keys(self) -> list[HeldCount]:
        """Each limit key with jobs held back by its limits: how many, and how many run."""
        return self.store.held_by_key()
