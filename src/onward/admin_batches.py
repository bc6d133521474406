"""Batches for operators: a batch's counts, its members page by page, and its callbacks.

Part of :class:`onward.admin.Admin` (``onward show BATCH_ID``, the dashboard's batch page)::

    ops = Admin(onward.connect())
    view = ops.batch(batch_id, page=2)
    print(view.record.state, view.record.pending, [m.state for m in view.members])
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from onward.errors import OnwardError
from onward.lifecycle import CancelEffect
from onward.records import BatchRecord, JobRecord
from onward.stores.base import Store

__all__ = ["BatchAdmin", "BatchCancelled", "BatchNotFound", "BatchView", "cancel_members"]

#: Members shown per page.
MEMBERS_PER_PAGE = 50


class BatchNotFound(OnwardError, KeyError):
    """No batch has this id in the store. Also a ``KeyError``."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "batch not found"


@dataclass(frozen=True, slots=True)
class BatchView:
    """A batch as operators see it: its record, one page of its members (enqueue order;
    ``page`` counts from 1 up to ``pages``) and its callbacks enqueued so far."""

    record: BatchRecord
    members: list[JobRecord]
    page: int
    pages: int
    callbacks: list[JobRecord]

    @property
    def progress(self) -> float:
        """The share of members that are final."""
        return self.record.progress


@dataclass(frozen=True, slots=True)
class BatchCancelled:
    """What cancelling a batch did: its record afterwards, and how many members were
    ``cancelled`` at once, were ``asked`` to stop (running), or were already ``finished``."""

    record: BatchRecord
    cancelled: int
    asked: int
    finished: int


def cancel_members(store: Store, batch_id: str) -> BatchCancelled:
    """Cancel every unfinished member of the batch (``KeyError`` if there is none): each
    as ``onward.cancel`` would, an enqueued one at once, a running one by a request."""
    effects: Counter[CancelEffect] = Counter()
    for job_id in store.get_batch(batch_id).job_ids:
        try:
            effects[store.cancel_job(job_id)] += 1
        except KeyError:  # purged
            continue
    return BatchCancelled(
        store.get_batch(batch_id),
        cancelled=effects[CancelEffect.CANCEL],
        asked=effects[CancelEffect.REQUEST],
        finished=effects[CancelEffect.NONE],
    )


class BatchAdmin:
    """The batch queries of :class:`onward.admin.Admin`."""

    store: Store

    def batch(self, batch_id: str, page: int = 1, per_page: int = MEMBERS_PER_PAGE) -> BatchView:
        """The batch ``batch_id`` with page ``page`` of its members; ``BatchNotFound``."""
        try:
            record = self.store.get_batch(batch_id.strip())
        except KeyError:
            raise BatchNotFound(f"no batch with id {batch_id!r}") from None
        pages = max(1, -(-len(record.job_ids) // per_page))
        page = min(max(1, page), pages)
        start = (page - 1) * per_page
        members = self._records(record.job_ids[start : start + per_page])
        return BatchView(record, members, page, pages, self._records(record.callback_ids))

    def cancel_batch(self, batch_id: str) -> BatchCancelled:
        """Cancel every unfinished member of the batch; ``BatchNotFound``."""
        try:
            return cancel_members(self.store, batch_id.strip())
        except KeyError:
            raise BatchNotFound(f"no batch with id {batch_id!r}") from None

    def is_batch(self, batch_id: str) -> bool:
        """Whether the store has a batch with this id."""
        try:
            self.store.get_batch(batch_id.strip())
        except KeyError:
            return False
        return True

    def _records(self, ids: tuple[str, ...]) -> list[JobRecord]:
        found = []
        for job_id in ids:
            try:
                found.append(self.store.get(job_id))
            except KeyError:  # purged
                continue
        return found
