"""The reaper: takes back the jobs of workers that died.

Every second or so it looks for the journals (:mod:`onward.journal`) that worker processes
of this machine left when they died, and has their jobs taken over at once
(:func:`onward.takeover.take_over_journal`): only the job each was running counts a try.
Then it takes back the jobs whose lease expired (workers of other machines, or without a
journal): each resumes if its execution saved progress, is retried, or fails for good, as
:func:`onward.lifecycle.after_lost_lease` decides; the store applies that decision in one
guarded transaction, so reapers on many workers never take a job twice.
"""

from __future__ import annotations

from onward.journal import dead_journals
from onward.stores.base import Store
from onward.takeover import take_over_journal

__all__ = ["Reaper"]


class Reaper:
    """Looks for dead workers' journals in ``journal_dir`` and for expired leases four times
    per lease (at least once a second)."""

    name = "reaper"

    def __init__(self, lease_timeout: float, journal_dir: str | None = None) -> None:
        self.every = min(1.0, lease_timeout / 4.0)
        self.journal_dir = journal_dir

    def interval(self) -> float:
        return self.every

    def run(self, store: Store) -> bool:
        taken = 0
        if self.journal_dir is not None:
            for path in dead_journals(self.journal_dir):
                taken += take_over_journal(store, path)
        return store.reap_expired() + taken > 0

    def close(self, store: Store) -> None:
        pass
