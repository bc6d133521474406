"""``JobHandle``: what ``perform_later`` returns, a job's id and the store it lives in."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onward.records import JobRecord
    from onward.stores.base import Store

__all__ = ["JobHandle"]


class JobHandle:
    """A reference to a stored job: its ``id`` and the store it lives in."""

    __slots__ = ("_id", "store")

    def __init__(self, job_id: str, store: Store) -> None:
        self._id = job_id
        self.store = store

    @property
    def id(self) -> str:
        return self._id

    def __repr__(self) -> str:
        return f"<JobHandle {self._id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobHandle) and other._id == self._id and other.store is self.store

    def __hash__(self) -> int:
        return hash(self._id)

    def resolve(self, job_id: str) -> None:
        """Point this handle at ``job_id``: a collected job whose unique key named another
        job once its transaction committed."""
        self._id = job_id

    def refresh(self) -> JobRecord:
        """The job's current record."""
        return self.store.get(self._id)

    def cancel(self) -> JobRecord:
        """Cancel the job and return its record: an enqueued job (waiting, scheduled, or
        waiting to retry or resume) is ``cancelled`` at once and never runs; a running one
        keeps running until its next step boundary or checkpoint (or until it looks at
        ``self.cancelled``), then ends as ``cancelled`` (its record shows
        ``cancel_requested_at`` meanwhile); a finished job is left as it is."""
        self.store.cancel_job(self._id)
        return self.store.get(self._id)

    def wait(self, timeout: float | None = None) -> JobRecord:
        """Block until the job is finished (succeeded, failed, discarded, cancelled); ``TimeoutError``
        after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.002
        while True:
            record = self.store.get(self._id)
            if record.finished:
                return record
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"job {self._id} is still {record.state} after {timeout} s")
                pause = min(pause, remaining)
            time.sleep(pause)
            pause = min(pause * 1.5, 0.1)
