"""Waking idle workers with ``LISTEN``/``NOTIFY``.

Every transaction that makes a job ready (enqueue, continuations, retry, resume, reclaim)
sends ``NOTIFY onward_jobs, '<queue>'``; PostgreSQL delivers it when that transaction commits.
One :class:`Listener` per store holds a dedicated connection that ``LISTEN``s and calls
``on_notify(queue)`` for each notification. It also listens for cancellation requests
(``NOTIFY onward_cancel, '<job id>'``, sent when a running job is cancelled) and passes each
id to ``on_cancel``, so that the worker running that job stops it at once. When the connection drops it reconnects with
backoff and then calls ``on_notify(None)`` ("anything may have changed"), since
notifications sent meanwhile are lost. Workers still look for jobs now and then without a
notification (see ``PostgresStore.claim``), so a missed notification only delays a job.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import pq

from onward.errors import describe
from onward.retry import backoff
from onward.stores.postgres.sql import CANCEL_CHANNEL, CHANNEL

log = logging.getLogger("onward.worker")

#: Seconds of silence after which the listener checks its connection with a query.
KEEPALIVE = 10.0
MAX_BACKOFF = 2.0


class Listener:
    """A thread that ``LISTEN``s on its own connection until :meth:`close`."""

    def __init__(
        self,
        conninfo: str,
        on_notify: Callable[[str | None], None],
        connect_timeout: float = 5.0,
        on_cancel: Callable[[str], None] | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._on_notify = on_notify
        self._on_cancel = on_cancel
        self._connect_timeout = connect_timeout
        self._closed = threading.Event()
        self.connected = threading.Event()
        self._stop_r, self._stop_w = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="onward-listen", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop listening and close the connection; returns once the thread ended."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self._stop_w.send(b"x")
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._stop_r.close()
        self._stop_w.close()

    def _run(self) -> None:
        failures = 0
        while not self._closed.is_set():
            try:
                conn = psycopg.connect(
                    self._conninfo, autocommit=True, connect_timeout=max(1, round(self._connect_timeout))
                )
            except psycopg.Error as exc:
                failures += 1
                delay = backoff(failures, 0.05, MAX_BACKOFF)
                log.warning("cannot listen for new jobs (%s); retrying in %.2f s", describe(exc), delay)
                if self._sleep(delay):
                    return
                continue
            try:
                conn.add_notify_handler(lambda n: self._received(n.channel, n.payload))
                conn.execute(f"LISTEN {CHANNEL}")
                conn.execute(f"LISTEN {CANCEL_CHANNEL}")
                self.connected.set()
                self._on_notify(None)  # notifications may have been missed while disconnected
                failures = 0
                self._listen(conn)
            except (psycopg.Error, OSError) as exc:
                if not self._closed.is_set():
                    log.warning("lost the connection listening for new jobs (%s); reconnecting", describe(exc))
            finally:
                self.connected.clear()
                conn.close()
            if not self._closed.is_set() and self._sleep(backoff(1, 0.05, MAX_BACKOFF)):
                return

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        pgconn = conn.pgconn
        while not self._closed.is_set():
            ready, _, _ = select.select([pgconn.socket, self._stop_r.fileno()], [], [], KEEPALIVE)
            if self._stop_r.fileno() in ready or self._closed.is_set():
                return
            if not ready:
                conn.execute("SELECT 1")  # a dead connection raises here
                continue
            pgconn.consume_input()
            if pgconn.status != pq.ConnStatus.OK:
                raise psycopg.OperationalError("the listening connection was closed by the server")
            while (notify := pgconn.notifies()) is not None:
                self._received(notify.relname.decode("utf-8", "replace"), notify.extra.decode("utf-8", "replace"))

    def _received(self, channel: str, payload: str) -> None:
        if channel == CANCEL_CHANNEL:
            if self._on_cancel is not None:
                self._on_cancel(payload)
        else:
            self._on_notify(payload)

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` or until closed; True when closed."""
        return self._closed.wait(seconds)
