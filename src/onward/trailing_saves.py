"""Trailing saves: an advanced cursor becomes durable within ``checkpoint_interval`` even
when the job stops advancing (a slow item, a wait on something else).

``advance`` and ``set`` save at most once per interval, at the first call after the interval
ends. Without more, a cursor advanced just after a save would wait for the *next* advance to
be written, however long that takes. So when a step runner skips a save it registers here,
once per interval, and this module's one daemon thread calls its ``trailing_save()`` when
the interval ends; the runner saves only if the cursor is still unsaved. (Async jobs use
``loop.call_later`` on their own event loop instead.)
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Protocol

log = logging.getLogger("onward.steps")


class TrailingSaver(Protocol):
    def trailing_save(self) -> None: ...


_due: list[tuple[float, int, TrailingSaver]] = []  # (monotonic due time, tie-breaker, runner)
_order = itertools.count()
_cond = threading.Condition()
_thread: threading.Thread | None = None


def schedule(saver: TrailingSaver, due: float) -> None:
    """Call ``saver.trailing_save()`` from the saving thread at ``due`` (``time.monotonic``)."""
    global _thread
    with _cond:
        heapq.heappush(_due, (due, next(_order), saver))
        if _thread is None or not _thread.is_alive():  # first use, or a forked child
            _thread = threading.Thread(target=_run, name="onward-trailing-saves", daemon=True)
            _thread.start()
        elif _due[0][2] is saver:
            _cond.notify()


def _next() -> TrailingSaver:
    with _cond:
        while True:
            if not _due:
                _cond.wait()
                continue
            wait = _due[0][0] - time.monotonic()
            if wait <= 0:
                return heapq.heappop(_due)[2]
            _cond.wait(wait)


def _run() -> None:
    while True:
        saver = _next()
        try:
            saver.trailing_save()
        except Exception:  # never let one job's problem stop the saves of the others
            log.exception("trailing checkpoint save failed")
