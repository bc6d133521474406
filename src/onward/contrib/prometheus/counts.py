"""The figures behind the worker metrics, counted without locks.

Each thread that reports job events counts them in a table of its own: ``(queue, job_class)``
to a list of numbers (the :data:`SLOTS` below), which only that thread ever writes, one ``+=``
on a list item per figure. Reading the figures (a scrape, or a write to the multiprocess
files) takes a consistent copy of every table under the GIL and adds them up. The table of a
thread that ends is folded into the totals, so short-lived threads that enqueue jobs (a web
server's request threads) neither lose their counts nor leave tables behind.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from onward import events

__all__ = ["BUCKETS", "OUTCOMES", "Counts", "Labels", "Row"]

#: Seconds: from a no-op job to a long import.
BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
#: The ``outcome`` label values of ``onward_jobs_finished_total``, in slot order.
OUTCOMES = ("succeeded", "failed", "retried", "discarded", "interrupted", "cancelled", "lost")

# A row's slots: enqueued, started, executions ended (running = started - ended), one per
# outcome, the sum of durations, then the duration buckets (the last one: above every bound).
ENQUEUED, STARTED, ENDED = 0, 1, 2
FIRST_OUTCOME = 3
SUM = FIRST_OUTCOME + len(OUTCOMES)
FIRST_BUCKET = SUM + 1
WIDTH = FIRST_BUCKET + len(BUCKETS) + 1

#: The slot each counted event kind adds one to.
SLOTS: dict[str, int] = {
    events.ENQUEUED: ENQUEUED,
    events.STARTED: STARTED,
    events.EXECUTION_ENDED: ENDED,
    events.SUCCEEDED: FIRST_OUTCOME,
    events.FAILED: FIRST_OUTCOME + 1,
    events.RETRIED: FIRST_OUTCOME + 2,
    events.RELEASED: FIRST_OUTCOME + 2,  # given back by a stopping worker: it runs again
    events.DISCARDED: FIRST_OUTCOME + 3,
    events.INTERRUPTED: FIRST_OUTCOME + 4,
    events.CANCELLED: FIRST_OUTCOME + 5,
    events.LOST: FIRST_OUTCOME + 6,
}

Labels = tuple[str, str]  # (queue, job_class)
Row = list[float]  # WIDTH numbers, laid out as above
_Table = dict[tuple[Any, Any], Row]


class _Owner:
    """Kept in a thread's local storage: when the thread ends it goes, and its table is folded."""

    __slots__ = ("__weakref__",)


class Counts:
    """Job event counts per ``(queue, job_class)``: :attr:`count` is the events counter (or
    :attr:`on_event` the events subscriber), :meth:`totals` what has been counted so far."""

    KINDS = frozenset(SLOTS)

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._live: list[_Table] = []  # the tables of threads still running
        self._done: dict[Labels, Row] = {}  # the sums of those of threads that ended
        #: When each series was first counted (``*_created`` samples).
        self.created: dict[Labels, float] = {}
        _all.add(self)
        #: The events counter (``onward.events.subscribe_counter(count, KINDS, guarded=True)``):
        #: counts an event of one of :attr:`KINDS` in this thread's table; never raises.
        self.count: events.Counter = self._counter()
        #: The same as an events subscriber: counts ``event`` (one of :attr:`KINDS`).
        self.on_event: Callable[[events.Event], None] = self._subscriber()

    def _counter(self) -> events.Counter:
        # What it reads are the closure's own variables: the fewest lookups per event.
        local, adopt, new_row, slots, buckets = self._local, self._adopt, self._new_row, SLOTS, BUCKETS
        first_outcome, total, first_bucket = FIRST_OUTCOME, SUM, FIRST_BUCKET

        def count(kind: str, queue: str | None, job_class: str | None, duration: float | None) -> None:
            try:  # a guarded counter: it must never raise into the code announcing the event
                slot = slots[kind]
                try:
                    table: _Table = local.table
                except AttributeError:
                    table = adopt()
                key = (queue, job_class)
                row = table.get(key)
                if row is None:
                    row = new_row(table, key)
                row[slot] += 1
                if duration is not None and slot >= first_outcome:
                    row[total] += duration
                    row[first_bucket + bisect_left(buckets, duration)] += 1
            except Exception:
                events.log.exception("the Prometheus metrics could not count %s", kind)

        return count

    def _subscriber(self) -> Callable[[events.Event], None]:
        count = self.count

        def on_event(event: events.Event) -> None:
            count(event.kind, event.queue, event.job_class, event.data.get("duration"))

        return on_event

    def _new_row(self, table: _Table, key: tuple[Any, Any]) -> Row:
        row: Row = [0] * WIDTH
        table[key] = row
        self.created.setdefault((key[0] or "", key[1] or ""), time.time())
        return row

    def totals(self) -> dict[Labels, Row]:
        """Every series counted so far, summed over threads (a copy)."""
        out: dict[Labels, Row] = {}
        with self._lock:
            tables = [self._done, *self._live]
            # Copies taken with the GIL held: a thread adding a series meanwhile cannot change
            # a dict being iterated.
            rows = [(key, row.copy()) for table in tables for key, row in table.copy().items()]
        for (queue, job_class), row in rows:
            labels = (queue or "", job_class or "")
            found = out.get(labels)
            if found is None:
                out[labels] = row
            else:
                for i, value in enumerate(row):
                    found[i] += value
        return out

    def _adopt(self) -> _Table:
        """Give this thread a table of its own, folded into the totals when the thread ends."""
        table: _Table = {}
        owner = _Owner()
        with self._lock:
            self._live.append(table)
        self._local.table = table
        self._local.owner = owner
        weakref.finalize(owner, self._fold, table)
        return table

    def _fold(self, table: _Table) -> None:
        with self._lock:
            self._live = [t for t in self._live if t is not table]
            for (queue, job_class), row in table.items():
                labels = (queue or "", job_class or "")
                found = self._done.get(labels)
                if found is None:
                    self._done[labels] = row.copy()
                else:
                    for i, value in enumerate(row):
                        found[i] += value

    def _forget(self) -> None:
        """(In a forked child.) Start from zero: the parent's figures are the parent's."""
        self._lock = threading.Lock()  # another thread may have held it at the fork
        for table in self._live:  # this thread's goes on counting, from zero; the others' stay empty
            table.clear()
        self._done = {}
        self.created = {}


_all: weakref.WeakSet[Counts] = weakref.WeakSet()


def _after_fork() -> None:
    for counts in list(_all):
        counts._forget()


os.register_at_fork(after_in_child=_after_fork)
