"""Django's database connections around the jobs a worker runs.

Django calls ``close_old_connections()`` when each request starts and ends, so a connection
that broke, or outlived ``CONN_MAX_AGE``, is never used again. A worker thread runs job
after job without requests; :func:`around_jobs` does the same around each job run by a
:class:`onward.Worker` of this process. Jobs run by ``perform_now`` are left alone: they run
in the caller's thread, inside the caller's request and transactions.

Async jobs run on the worker's event loop, whose thread holds no Django connection; the
synchronous work of async task functions runs in a thread of their own (see
:class:`onward.contrib.django.jobs.RunAsyncTask`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import close_old_connections, connections

from onward import events

__all__ = ["around_jobs"]


class _AroundJobs:
    def __init__(self, close: bool) -> None:
        self.close = close
        self.workers: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, event: events.Event) -> None:
        kind = event.kind
        if kind == events.WORKER_STARTED and event.worker_id:
            with self.lock:
                self.workers.add(event.worker_id)
        elif kind == events.WORKER_STOPPED:
            with self.lock:
                self.workers.discard(event.worker_id or "")
        elif kind in (events.STARTED, events.EXECUTION_ENDED) and event.worker_id in self.workers:
            if _on_event_loop():
                return
            if self.close and kind == events.EXECUTION_ENDED:
                connections.close_all()
            else:
                close_old_connections()


@contextmanager
def around_jobs(*, close: bool = False) -> Iterator[None]:
    """While the block runs, every job a worker of this process runs starts and ends with
    Django's ``close_old_connections()``; with ``close=True`` its thread's connections are
    closed when it ends (tests, where the test database is dropped afterwards)."""
    kinds = (events.WORKER_STARTED, events.WORKER_STOPPED, events.STARTED, events.EXECUTION_ENDED)
    unsubscribe = events.subscribe(_AroundJobs(close), kinds)
    try:
        yield
    finally:
        unsubscribe()


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
