"""Job events: one place where everything that happens to a job is announced.

Logs, Prometheus metrics, OpenTelemetry traces and framework integrations are subscribers::

    from onward import events

    def on_event(event: events.Event) -> None:
        if event.kind == events.FAILED:
            alert(event.job_class, event.error)

    unsubscribe = events.subscribe(on_event)

An event is emitted on the thread (or, for async jobs, in the task) where it happened, after
the store recorded it: ``succeeded`` is emitted once the success has committed. The events
``started`` and ``execution_ended`` bracket each execution on the thread (or in the task) that
runs it, so a subscriber can open and close per-job resources there (a trace span, a
framework's database connections). A subscriber must be quick and must not raise; an exception it raises
is logged and ignored, so it can never change a job's outcome.

A subscriber may name the kinds it listens to (``subscribe(fn, kinds=...)``): an event of a
kind nobody listens to is not even built, so with no subscriber for it an event costs one
set lookup.

A subscriber that only counts events (metrics) can be a *counter* instead:
``subscribe_counter(fn, kinds)`` calls ``fn(kind, queue, job_class, duration)`` for each event of
``kinds``, with ``duration`` the seconds an execution ran for the kinds that end one (else
``None``). While counters are the only listeners of a kind, its events are not built at all,
only counted::

    def count(kind: str, queue: str | None, job_class: str | None, duration: float | None) -> None:
        totals[kind, queue] += 1

    unsubscribe = events.subscribe_counter(count, [events.SUCCEEDED, events.FAILED])
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

__all__ = [
    "CANCELLED",
    "CHECKPOINTED",
    "CONTINUATION_ERROR",
    "DISCARDED",
    "ENQUEUED",
    "EXECUTION_ENDED",
    "FAILED",
    "INTERRUPTED",
    "JOB_OUTCOMES",
    "LOST",
    "RELEASED",
    "RETRIED",
    "STARTED",
    "STEP_COMPLETED",
    "STEP_SKIPPED",
    "STEP_STARTED",
    "SUCCEEDED",
    "WORKER_STARTED",
    "WORKER_STOPPED",
    "Counter",
    "Event",
    "count",
    "emit",
    "enqueued",
    "event",
    "subscribe",
    "subscribe_counter",
]

# -- kinds --------------------------------------------------------------------------------
ENQUEUED = "enqueued"  #: a job was stored (after its transaction committed)
STARTED = "started"  #: an execution began, on the job's thread (``resumed``: a resumption, ``step``: where)
SUCCEEDED = "succeeded"  #: the success committed (``continuations``: how many were enqueued)
FAILED = "failed"  #: failed for good (``error``)
RETRIED = "retried"  #: failed this try, to run again: a retry or a resumption (``delay``, ``resumption``)
DISCARDED = "discarded"  #: discarded by ``discard_on``
INTERRUPTED = "interrupted"  #: stopped at a checkpoint, back in the queue to resume (``reason``)
CANCELLED = "cancelled"  #: ended on a cancellation request
LOST = "lost"  #: this execution's lease was taken back; nothing it did afterwards was recorded
RELEASED = "released"  #: given back to the queue by a stopping worker (shutdown timeout)
CHECKPOINTED = "checkpointed"  #: progress saved durably (``step``, ``cursor``)
STEP_STARTED = "step_started"  #: a step began or resumed (``step``, ``cursor``, ``resumed``)
STEP_COMPLETED = "step_completed"  #: a step completed (``step``)
STEP_SKIPPED = "step_skipped"  #: a step completed in an earlier execution was skipped (``step``)
CONTINUATION_ERROR = "continuation_error"  #: ``continuations`` raised; none of its jobs was enqueued
EXECUTION_ENDED = "execution_ended"  #: on the job's thread, once the execution's outcome is known
WORKER_STARTED = "worker_started"
WORKER_STOPPED = "worker_stopped"

#: The kinds that end an execution, one per execution (``succeeded`` may come from the
#: thread that committed it).
JOB_OUTCOMES = frozenset({SUCCEEDED, FAILED, RETRIED, DISCARDED, INTERRUPTED, CANCELLED, LOST, RELEASED})

log = logging.getLogger("onward.events")


class Event:
    """Something that happened to a job (or a worker).

    ``job_class`` is the import path (``module:ClassName``); ``attempt`` and ``resumptions``
    are the execution's; ``worker_id`` is the worker (or ``perform_now`` caller) that ran it.
    ``data`` holds what is particular to the kind (see the kind constants); the common
    entries are also attributes: ``error`` (the formatted traceback), ``duration`` (seconds
    the execution ran), ``step``.
    """

    __slots__ = ("attempt", "data", "job_class", "job_id", "kind", "queue", "resumptions", "time", "worker_id")

    def __init__(
        self,
        kind: str,
        job_id: str | None = None,
        job_class: str | None = None,
        queue: str | None = None,
        *,
        attempt: int = 0,
        resumptions: int = 0,
        worker_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.kind = kind
        self.job_id = job_id
        self.job_class = job_class
        self.queue = queue
        self.attempt = attempt
        self.resumptions = resumptions
        self.worker_id = worker_id
        self.data = data if data is not None else {}
        self.time = time.time()

    def __repr__(self) -> str:
        return f"<Event {self.kind} {self.job_class} {self.job_id} {self.data!r}>"

    @property
    def error(self) -> str | None:
        value = self.data.get("error")
        return value if isinstance(value, str) else None

    @property
    def duration(self) -> float | None:
        value = self.data.get("duration")
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def step(self) -> str | None:
        value = self.data.get("step")
        return value if isinstance(value, str) else None


_new_event = object.__new__
_now = time.time


def event(
    kind: str,
    job_id: str | None,
    job_class: str | None,
    queue: str | None,
    attempt: int,
    resumptions: int,
    worker_id: str | None,
    data: dict[str, Any],
) -> Event:
    """``Event(kind, job_id, job_class, queue, attempt=..., resumptions=..., worker_id=...,
    data=...)``, built in half the time (no keyword arguments to bind): for emitters on a hot path."""
    e: Event = _new_event(Event)
    e.kind = kind
    e.job_id = job_id
    e.job_class = job_class
    e.queue = queue
    e.attempt = attempt
    e.resumptions = resumptions
    e.worker_id = worker_id
    e.data = data
    e.time = _now()
    return e


Subscriber = Callable[[Event], None]
#: ``counter(kind, queue, job_class, duration)``: what a counter is told of an event.
Counter = Callable[[str, str | None, str | None, float | None], None]

#: The subscribers, in order. Read it to skip building an event nobody listens to.
subscribers: tuple[Subscriber, ...] = ()
#: The kinds some subscriber or counter listens to: ``kind in events.wanted`` before doing
#: anything for an event.
wanted: frozenset[str] = frozenset()
#: The kinds some subscriber listens to: an event of another kind (one only counters listen
#: to) is announced with :func:`count` instead of being built.
built: frozenset[str] = frozenset()
_table: tuple[tuple[Subscriber, frozenset[str] | None], ...] = ()
_counter_table: tuple[tuple[Counter, frozenset[str], bool], ...] = ()
#: For each kind some subscriber listens to, those subscribers in order.
_routes: dict[str, tuple[Subscriber, ...]] = {}
#: For each kind some counter listens to, those counters in order.
_counters: dict[str, tuple[Counter, ...]] = {}
_lock = threading.Lock()
_ALL_KINDS = frozenset(
    {
        ENQUEUED,
        STARTED,
        SUCCEEDED,
        FAILED,
        RETRIED,
        DISCARDED,
        INTERRUPTED,
        CANCELLED,
        LOST,
        RELEASED,
        CHECKPOINTED,
        STEP_STARTED,
        STEP_COMPLETED,
        STEP_SKIPPED,
        CONTINUATION_ERROR,
        EXECUTION_ENDED,
        WORKER_STARTED,
        WORKER_STOPPED,
    }
)


def _publish(
    table: tuple[tuple[Subscriber, frozenset[str] | None], ...],
    counter_table: tuple[tuple[Counter, frozenset[str], bool], ...],
) -> None:
    """(Under the lock.) Make ``table`` the subscriptions and ``counter_table`` the counters."""
    global subscribers, wanted, built, count, _table, _counter_table, _routes, _counters
    routes: dict[str, list[Subscriber]] = {}
    for fn, kinds in table:
        for kind in _ALL_KINDS if kinds is None else kinds:
            routes.setdefault(kind, []).append(fn)
    counters: dict[str, list[Counter]] = {}
    for counter, kinds, _ in counter_table:
        for kind in kinds:
            counters.setdefault(kind, []).append(counter)
    _table, _counter_table = table, counter_table
    _routes = {kind: tuple(fns) for kind, fns in routes.items()}
    _counters = {kind: tuple(fns) for kind, fns in counters.items()}
    subscribers = tuple(fn for fn, _ in table)
    built = frozenset(routes)
    wanted = built | frozenset(counters)
    # The one counter there is, if it guards itself against its own errors, is called directly.
    only = counter_table[0] if len(counter_table) == 1 else None
    count = only[0] if only is not None and only[2] else _count_each


def subscribe(fn: Subscriber, kinds: Iterable[str] | None = None) -> Callable[[], None]:
    """Call ``fn(event)`` for every event from now on (only those of ``kinds``, if given);
    returns a function that unsubscribes."""
    entry = (fn, None if kinds is None else frozenset(kinds))
    with _lock:
        _publish((*_table, entry), _counter_table)

    def unsubscribe() -> None:
        with _lock:
            _publish(tuple(e for e in _table if e is not entry), _counter_table)

    return unsubscribe


def subscribe_counter(fn: Counter, kinds: Iterable[str], *, guarded: bool = False) -> Callable[[], None]:
    """Call ``fn(kind, queue, job_class, duration)`` for every event of ``kinds`` from now on,
    whether or not the event is built for a subscriber; returns a function that unsubscribes.

    ``guarded=True`` promises that ``fn`` catches and logs every exception it could raise:
    while it is the only counter, it is then called directly, without a dispatch doing that
    for it (the Prometheus metrics are such a counter)."""
    entry = (fn, frozenset(kinds), guarded)
    with _lock:
        _publish(_table, (*_counter_table, entry))

    def unsubscribe() -> None:
        with _lock:
            _publish(_table, tuple(e for e in _counter_table if e is not entry))

    return unsubscribe


def emit(event: Event) -> None:
    """Hand ``event`` to every subscriber that listens to its kind, in the order they
    subscribed, then to the counters of its kind."""
    kind = event.kind
    for fn in _routes.get(kind, ()):
        try:
            fn(event)
        except Exception:
            log.exception("an onward event subscriber failed on %s", kind)
    if kind in _counters:
        count(kind, event.queue, event.job_class, event.duration)


def _count_each(kind: str, queue: str | None, job_class: str | None, duration: float | None) -> None:
    for fn in _counters.get(kind, ()):
        try:
            fn(kind, queue, job_class, duration)
        except Exception:
            log.exception("an onward event counter failed on %s", kind)


#: ``count(kind, queue, job_class, duration)`` announces an event of ``kind`` to its counters
#: alone: for an emitter that found ``kind`` in :data:`wanted` but not in :data:`built` (no
#: subscriber would see the event, so it is not built). ``duration``: the seconds the
#: execution ran, for the kinds that end one, else ``None``.
count: Counter = _count_each


class _Stored(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def job_class(self) -> str: ...
    @property
    def queue(self) -> str: ...


def enqueued(jobs: Sequence[_Stored], ids: Sequence[str]) -> None:
    """Emit ``enqueued`` for stored ``jobs``; ``ids`` are the jobs that exist, in order (a
    unique key may name an older job, which is not new and is not announced)."""
    if ENQUEUED not in wanted:
        return
    build = ENQUEUED in built
    for job, job_id in zip(jobs, ids, strict=True):
        if job_id == job.id:
            if build:
                emit(Event(ENQUEUED, job.id, job.job_class, job.queue))
            else:
                count(ENQUEUED, job.queue, job.job_class, None)
