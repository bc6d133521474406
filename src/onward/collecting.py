"""Collecting ``perform_later`` calls instead of storing them at once.

Inside ``continuations``, inside ``onward.transaction(conn)`` and inside ``onward.batch()``, the
jobs a block enqueues are gathered here and inserted together when the block ends, in the
transaction that gives them meaning: the parent's success, the caller's commit. The
collector is a context variable, so it follows the block across ``await`` and into
``contextvars.copy_context()`` threads, and it nests: a ``perform_now`` inside a collecting
block sets it aside for its own run.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from onward.handles import JobHandle

if TYPE_CHECKING:
    from onward.stores.base import Inserter, NewBatch, NewJob, Store

__all__ = [
    "Collector",
    "add_joiner",
    "collecting",
    "current",
    "gather",
    "joined",
    "joiners",
    "remove_joiner",
    "set_aside",
]


@dataclass
class Collector:
    """The jobs a block enqueued, in order, with the handles returned for them; and the
    batches closed inside the block, with the handles of their members (batch after batch)."""

    store: Store
    jobs: list[NewJob] = field(default_factory=list)
    handles: list[JobHandle] = field(default_factory=list)
    batches: list[NewBatch] = field(default_factory=list)
    member_handles: list[JobHandle] = field(default_factory=list)

    def add_batch(self, batch: NewBatch, inner: Collector) -> None:
        """Commit ``batch`` (whose members ``inner`` collected) with this block's jobs, and
        the batches closed inside it after it."""
        self.batches += [batch, *inner.batches]
        self.member_handles += inner.handles + inner.member_handles

    @property
    def members(self) -> list[NewJob]:
        """The members of the collected batches, in the order a store returns their ids."""
        return [job for batch in self.batches for job in batch.members]

    def resolve(self, ids: Sequence[str]) -> None:
        """Once inserted (``ids``: the jobs', then the batches' members', as a store returns
        them): point each handle at the job that exists (a unique key may name an older one)."""
        for handle, job_id in zip(self.handles + self.member_handles, ids, strict=True):
            if handle.id != job_id:
                handle.resolve(job_id)


_current: contextvars.ContextVar[Collector | None] = contextvars.ContextVar("onward_collector", default=None)


def current() -> Collector | None:
    """The collector of the innermost collecting block, if any."""
    return _current.get()


def gather(jobs: Sequence[NewJob]) -> list[JobHandle] | None:
    """Add ``jobs`` to the current collector and return their handles; ``None`` when no
    block is collecting (the caller then stores them itself)."""
    pending = _current.get()
    if pending is None:
        return None
    handles = [JobHandle(job.id, pending.store) for job in jobs]
    pending.jobs.extend(jobs)
    pending.handles.extend(handles)
    return handles


@contextmanager
def collecting(store: Store) -> Iterator[Collector]:
    """Collect the jobs enqueued in this block (on this context) into a new collector."""
    pending = Collector(store)
    token = _current.set(pending)
    try:
        yield pending
    finally:
        _current.reset(token)


@contextmanager
def set_aside() -> Iterator[None]:
    """Enqueue at once in this block, whatever encloses it (``perform_now``)."""
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)


# -- framework transactions ------------------------------------------------------------------
# An integration (Django's) can make a plain ``perform_later`` join the transaction its
# framework holds open: a joiner returns the function inserting jobs into that transaction,
# or ``None`` when none is open (or for a store it does not serve).

Joiner = Callable[["Store"], "Inserter | None"]

#: The joiners in force; empty unless an integration added one.
joiners: tuple[Joiner, ...] = ()


def add_joiner(joiner: Joiner) -> None:
    """Ask ``joiner`` at every enqueue outside a collecting block (see above)."""
    global joiners
    if joiner not in joiners:
        joiners = (*joiners, joiner)


def remove_joiner(joiner: Joiner) -> None:
    global joiners
    joiners = tuple(j for j in joiners if j is not joiner)


def joined(store: Store) -> Inserter | None:
    """The inserter of a framework transaction open for ``store``, if any."""
    for joiner in joiners:
        insert = joiner(store)
        if insert is not None:
            return insert
    return None
