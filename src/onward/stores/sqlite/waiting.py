"""An idle worker's wait for jobs on the SQLite store: the WAL watch, else polling."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

from onward.stores.sqlite import sql
from onward.stores.sqlite.connection import SQLiteConnections
from onward.stores.sqlite.wake import WalWatch, watch

__all__ = ["SETTLE", "WAKE_CHECK", "SQLiteWaiting"]

#: Longest an idle worker sleeps on the WAL watch before it looks at its own wake-up event,
#: when that event cannot be waited for in ``select`` (a plain :class:`threading.Event`).
WAKE_CHECK = 0.01
#: A write to the WAL shows as a commit (``PRAGMA data_version``) only once it completes: look
#: again for this long after one, since no other write may follow to wake the watch.
SETTLE = 0.005


class SQLiteWaiting(SQLiteConnections):
    """(A part of :class:`onward.stores.sqlite.store.SQLiteStore`.) Waiting for jobs."""

    def __init__(self) -> None:
        self._watch: WalWatch | Literal[False] | None = None  # see _wal_watch

    def next_ready_in(self, queues: Sequence[str] | None) -> float | None:
        queue_sql, queue_params = sql.queue_filter(queues)
        row = self._exec(sql.NEXT_DUE.format(queue=queue_sql), (*queue_params, *queue_params)).fetchone()
        if row is None or row[0] is None:
            return None
        return float(row[0]) - self.clock()

    def wait_for_jobs(self, queues: Sequence[str] | None, timeout: float, wake: threading.Event) -> None:
        """Sleep until another connection commits, ``wake`` is set, a scheduled job of
        ``queues`` comes due, or ``timeout`` passes. Commits are seen through the WAL file
        (see :mod:`onward.stores.sqlite.wake`), else by polling ``PRAGMA data_version`` (it
        changes when another connection commits) every millisecond or two. A ``wake`` with a
        ``fileno()`` (:class:`onward.wakeups.Wakeup`) is waited for in the same ``select``:
        an idle worker then wakes only when something happens."""
        conn = self._conn()
        watcher = self._wal_watch()
        if watcher is not None:
            watcher.drain()  # the writes before this point are seen by data_version below
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        waited = getattr(self._local, "waited", None)
        self._local.waited = (conn, version)
        if waited is not None and waited != (conn, version):
            return  # another connection committed since this thread's last wait: maybe after the last claim
        deadline = time.monotonic() + timeout
        due = self.next_ready_in(queues)
        if due is not None and due > 0:
            deadline = min(deadline, time.monotonic() + due)
        if watcher is None:
            self._poll_for_jobs(conn, version, queues, deadline, wake)
        else:
            # The version a commit wakes it with: the next wait looks at once only if another
            # commit follows (otherwise the entry's: the next wait looks at once on any commit).
            self._local.waited = (conn, self._watch_for_jobs(watcher, conn, version, deadline, wake))

    def _watch_for_jobs(
        self, watcher: WalWatch, conn: Any, version: int, deadline: float, wake: threading.Event
    ) -> int:
        """Sleep on the WAL watch (and ``wake``, when it has a ``fileno()``); returns the
        ``data_version`` a commit by another connection changed ``version`` to, else ``version``."""
        fileno = getattr(wake, "fileno", None)
        also = fileno() if callable(fileno) else None
        while not wake.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed:
                break
            if not watcher.wait(remaining if also is not None else min(remaining, WAKE_CHECK), also):
                continue  # the time is up, or (a wake without fileno()) look at it again
            if wake.is_set():
                break
            current = self._settled(conn, version)
            if current != version:
                return current
        return version

    def _settled(self, conn: Any, version: int) -> int:
        """After a write to the WAL: ``data_version``, looking again until it differs from
        ``version`` for up to ``SETTLE`` seconds (a commit shows only once complete, and no
        other write may follow to wake the watch): at once, then after yielding the
        processor, then every half millisecond."""
        settle = time.monotonic() + SETTLE
        pause = 0.0
        while True:
            current: int = conn.execute("PRAGMA data_version").fetchone()[0]
            if current != version or time.monotonic() >= settle:
                return current  # changed: someone committed, and the claim that follows looks
            time.sleep(pause)
            pause = 0.0005

    def _poll_for_jobs(
        self, conn: Any, version: int, queues: Sequence[str] | None, deadline: float, wake: threading.Event
    ) -> None:
        """Without a WAL watch: look at ``data_version`` every millisecond or two."""
        interval = 0.001
        while not wake.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed or wake.wait(min(interval, remaining)):
                return
            interval = min(interval * 1.25, 0.004)
            current = conn.execute("PRAGMA data_version").fetchone()[0]
            if current != version:
                version = current
                ready = self.next_ready_in(queues)
                if ready is not None and ready <= 0:
                    return

    def _wal_watch(self) -> WalWatch | None:
        """This store's watch on its WAL file, made on first use (``None``: poll instead)."""
        if self._watch is False:
            return None
        if self._watch is None:
            with self._conns_lock:
                if self._watch is None:
                    self._watch = watch(self.path + "-wal") or False
        return self._watch if isinstance(self._watch, WalWatch) else None

    def close(self) -> None:
        super().close()
        found, self._watch = self._watch, False
        if isinstance(found, WalWatch):
            found.close()
