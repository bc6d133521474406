"""Batches (fan-in): a group of jobs and the callbacks that run once they are all done.

::

    batch = onward.batch(description="album 7")
    with batch:
        for image_id in image_ids:
            ResizeImage.perform_later(image_id)
        batch.on_success(PublishAlbum, 7)   # once, when every member succeeded
        batch.on_finish(NotifyOwner, 7)     # once, when every member is final

The ``perform_later`` calls of the block are collected (:mod:`onward.collecting`) and stored
with the batch in one transaction when the block exits normally; if it raises, nothing is
stored. Inside ``continuations`` or ``onward.transaction(conn)`` the batch joins that
transaction instead. The store keeps the batch's counters and callbacks: each member's state
change moves the counters in the transaction that records it, and the one that leaves no
member pending inserts the callbacks due, once each.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from onward import collecting, connecting, events
from onward.admin_batches import cancel_members
from onward.collecting import Collector
from onward.errors import OnwardError
from onward.ids import new_id
from onward.job import Configured, Job
from onward.options import NO_OPTIONS
from onward.records import BatchRecord
from onward.stores.base import NewBatch, NewJob, Store

__all__ = ["Batch", "batch", "get_batch"]


class Batch:
    """A batch being built: use it as a context manager (see :func:`batch`)."""

    def __init__(self, description: str | None = None) -> None:
        if description is not None and not isinstance(description, str):
            raise TypeError(f"onward.batch(): description must be a str or None, got {description!r}")
        self.id = new_id()
        self.description = description
        self._on_success: list[NewJob] = []
        self._on_finish: list[NewJob] = []
        self._block: AbstractContextManager[Collector] | None = None
        self._pending: Collector | None = None
        self._store: Store | None = None  # where the block stores it
        self._done = False

    def __repr__(self) -> str:
        return f"<onward.Batch {self.id} {self.description!r}>"

    # -- callbacks ------------------------------------------------------------------------
    def on_success(self, job: type[Job] | Configured, *args: Any, **kwargs: Any) -> None:
        """Enqueue ``job(*args, **kwargs)`` once, when every member succeeded."""
        self._on_success.append(self._callback("on_success", job, args, kwargs))

    def on_finish(self, job: type[Job] | Configured, *args: Any, **kwargs: Any) -> None:
        """Enqueue ``job(*args, **kwargs)`` once, when every member is final (succeeded,
        failed, discarded or cancelled)."""
        self._on_finish.append(self._callback("on_finish", job, args, kwargs))

    def _callback(self, kind: str, job: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> NewJob:
        if self._done:
            raise OnwardError(f"batch {self.id}: {kind}() after the batch was stored; call it inside the with block")
        if isinstance(job, type) and issubclass(job, Job):
            job = Configured(job, NO_OPTIONS)
        if not isinstance(job, Configured):
            raise TypeError(f"batch.{kind}(): expected a Job subclass or a Job.set(...) object, got {job!r}")
        return job.new_job(args, kwargs)

    # -- the block ----------------------------------------------------------------------------
    def __enter__(self) -> Batch:
        if self._block is not None or self._done:
            raise OnwardError(f"batch {self.id} can be used in one with block only")
        outer = collecting.current()
        store = outer.store if outer is not None else connecting.default()
        self._store = store
        self._block = collecting.collecting(store)
        self._pending = self._block.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        block, pending = self._block, self._pending
        assert block is not None
        assert pending is not None
        block.__exit__(exc_type, exc, tb)
        self._block = self._pending = None
        if exc_type is not None:
            return  # nothing is stored
        self._done = True
        stored = NewBatch(self.id, self.description, pending.jobs, tuple(self._on_success), tuple(self._on_finish))
        outer = collecting.current()
        if outer is not None:
            outer.add_batch(stored, pending)  # committed with the enclosing block
            return
        _store_batches(pending.store, pending, stored)

    @property
    def record(self) -> BatchRecord:
        """The batch as stored now (``KeyError`` before its block committed)."""
        return (self._store or connecting.default()).get_batch(self.id)

    def cancel(self) -> BatchRecord:
        """Cancel every unfinished member (each as ``onward.cancel`` would: an enqueued one
        at once, a running one stops at its next checkpoint) and return the batch's record;
        ``KeyError`` before its block committed."""
        return cancel_members(self._store or connecting.default(), self.id).record


def _store_batches(store: Store, pending: Collector, stored: NewBatch) -> None:
    """Insert ``stored`` (and the batches closed inside its block) now: inside a framework
    transaction when one is open for ``store``, else in a transaction of their own."""
    batches = [stored, *pending.batches]
    insert = collecting.joined(store) if collecting.joiners else None
    ids = insert([], batches) if insert is not None else store.enqueue([], batches)
    pending.resolve(ids)
    events.enqueued([job for b in batches for job in b.members], ids)


def batch(description: str | None = None) -> Batch:
    """A new batch: ``with batch: ...`` makes the block's ``perform_later`` calls its members."""
    return Batch(description)


def get_batch(id: str) -> BatchRecord:  # noqa: A002 - the documented name
    """The record of batch ``id`` in the default store; ``KeyError`` if there is none."""
    return connecting.default().get_batch(id)
