"""The reaper: takes back the jobs of workers that died (their lease expired).

Each expired job resumes if its execution saved progress, is retried, or fails for good, as
:func:`onward.lifecycle.after_lost_lease` decides; the store applies that decision in one
guarded transaction, so reapers on many workers never take a job twice.
"""

from __future__ import annotations

from onward.stores.base import Store

__all__ = ["Reaper"]


class Reaper:
    """Looks for expired leases four times per lease (at least once a second)."""

    name = "reaper"

    def __init__(self, lease_timeout: float) -> None:
        self.every = min(1.0, lease_timeout / 4.0)

    def interval(self) -> float:
        return self.every

    def run(self, store: Store) -> bool:
        return store.reap_expired() > 0

    def close(self, store: Store) -> None:
        pass
