"""Telling the executions of this process at once that a job they run was asked to stop.

Workers learn of a cancellation request through their heartbeat in any case; a store that
hears of a request sooner (``NOTIFY`` on PostgreSQL, or a cancel made in this very process)
passes the job's id to the watchers registered here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["CancelWatchers"]

log = logging.getLogger("onward.worker")


class CancelWatchers:
    """``add_cancel_watcher``/``remove_cancel_watcher`` of the Store protocol."""

    _cancel_watchers: tuple[Callable[[str], None], ...] = ()
    _cancel_watchers_lock = threading.Lock()

    def add_cancel_watcher(self, watcher: Callable[[str], None]) -> None:
        with self._cancel_watchers_lock:
            self._cancel_watchers = (*self._cancel_watchers, watcher)

    def remove_cancel_watcher(self, watcher: Callable[[str], None]) -> None:
        with self._cancel_watchers_lock:
            self._cancel_watchers = tuple(w for w in self._cancel_watchers if w != watcher)

    def _cancel_requested(self, job_id: str) -> None:
        for watcher in self._cancel_watchers:
            try:
                watcher(job_id)
            except Exception:
                log.exception("a cancellation watcher failed for job %s", job_id)
