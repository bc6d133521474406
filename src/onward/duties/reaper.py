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

import logging

from onward.journal import dead_journals
from onward.stores.base import Store, TakenBack
from onward.takeover import take_over_journal

__all__ = ["Reaper", "log_taken_back"]

log = logging.getLogger("onward.worker")

_BECAME = {
    "resumed": "it resumes from its checkpoint",
    "retried": "it will be retried",
    "failed": "it failed",
    "cancelled": "it was cancelled, as requested",
}


def log_taken_back(job: TakenBack, by: str | None = None) -> None:
    """One line for a job taken back after its worker's lease expired (``by``: the worker
    that took it back), unlike the line of a job resumed after a graceful stop."""
    name = job.job_class.rpartition(":")[2] or job.job_class
    log.warning(
        "%s %s taken over from worker %s after its lease expired; %s",
        name,
        job.id,
        job.worker_id or "?",
        _BECAME.get(job.verdict, job.verdict),
        extra={"job_id": job.id, "event": "taken_over", "worker_id": by, "from_worker_id": job.worker_id},
    )


class Reaper:
    """Looks for dead workers' journals in ``journal_dir`` and for expired leases four times
    per lease (at least once a second)."""

    name = "reaper"

    def __init__(self, lease_timeout: float, journal_dir: str | None = None, worker_id: str | None = None) -> None:
        self.every = min(1.0, lease_timeout / 4.0)
        self.journal_dir = journal_dir
        self.worker_id = worker_id

    def interval(self) -> float:
        return self.every

    def run(self, store: Store) -> bool:
        taken = 0
        if self.journal_dir is not None:
            for path in dead_journals(self.journal_dir):
                taken += take_over_journal(store, path)
        return store.reap_expired(self._taken) + taken > 0

    def _taken(self, job: TakenBack) -> None:
        log_taken_back(job, self.worker_id)

    def close(self, store: Store) -> None:
        pass
