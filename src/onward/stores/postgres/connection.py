"""Connections to a PostgreSQL database, retried when the server goes away, and the wake-ups
of local workers (``LISTEN``/``NOTIFY``).

Connections come from a ``psycopg_pool`` pool (``?pool_size=N`` in the URL, default 20;
connections open on demand). When the server goes away, writes that an execution depends on
(checkpoints, outcomes, heartbeats, enqueues) retry with backoff for up to
``?reconnect_timeout=S`` seconds (default 30), so a server restart costs neither progress nor
results.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import psycopg
import psycopg.conninfo
import psycopg_pool

from onward.errors import ConfigurationError, StoreClosed, describe
from onward.retry import backoff
from onward.stores._common import mask_url
from onward.stores.postgres.listen import Listener
from onward.stores.postgres.loaders import configure
from onward.stores.postgres.schema import migrate

__all__ = ["CONNECT_TIMEOUT", "PostgresConnections", "driver_connection", "split_url"]

log = logging.getLogger("onward.store")
#: How many times a transaction that PostgreSQL chose as a deadlock's victim is tried again.
DEADLOCK_RETRIES = 5

T = TypeVar("T")

DEFAULT_POOL_SIZE = 20
DEFAULT_RECONNECT_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10
_OWN_OPTIONS = ("pool_size", "reconnect_timeout")
MAX_POOL_SIZE = 10_000
MAX_RECONNECT_TIMEOUT = 7 * 86400.0


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """The libpq URL (Onward's own query options removed, everything else as written) and
    those options."""
    base, sep, query = url.partition("?")
    if not sep:
        return url, {}
    pairs = parse_qsl(query, keep_blank_values=True)
    own = {k: v for k, v in pairs if k in _OWN_OPTIONS}
    rest = [(k, v) for k, v in pairs if k not in _OWN_OPTIONS]
    # quote, not quote_plus: libpq reads a "+" in a URL as a plus sign, not a space.
    return (f"{base}?{urlencode(rest, quote_via=quote)}" if rest else base), own


def _disconnected(exc: BaseException, conn: psycopg.Connection[Any] | None) -> bool:
    """True when ``exc`` means the connection or the server went away (worth retrying)."""
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    if conn is not None and (conn.broken or conn.closed):
        return True
    state = exc.sqlstate or ""
    return state.startswith("08") or state in ("57P01", "57P02", "57P03")


def driver_connection(connection: Any) -> psycopg.Connection[Any]:
    """The psycopg 3 connection behind ``connection`` (Django's, SQLAlchemy's or psycopg's own)."""
    candidate = connection
    if callable(getattr(candidate, "ensure_connection", None)):  # django.db.connection
        candidate.ensure_connection()
        candidate = candidate.connection
    inner = getattr(candidate, "connection", None)  # sqlalchemy.engine.Connection
    if inner is not None and hasattr(inner, "driver_connection"):
        candidate = inner.driver_connection
    candidate = getattr(candidate, "driver_connection", candidate)
    if isinstance(candidate, psycopg.Connection):
        return candidate
    if isinstance(candidate, psycopg.AsyncConnection):
        raise TypeError("onward.transaction() takes a synchronous psycopg.Connection, not an AsyncConnection")
    raise TypeError(
        f"onward.transaction() takes a psycopg (version 3) connection, Django's django.db.connection or a"
        f" SQLAlchemy Connection using psycopg; got {type(connection).__name__}"
    )


class PostgresConnections:
    """This process's pool of connections to the database at ``url``, and its listener."""

    def __init__(self, url: str, pool_size: int | None = None) -> None:
        self.url = mask_url(url)
        conninfo, options = split_url(url)
        self._conninfo = conninfo
        try:
            size = int(options.get("pool_size", pool_size or DEFAULT_POOL_SIZE))
            self.reconnect_timeout = float(options.get("reconnect_timeout", DEFAULT_RECONNECT_TIMEOUT))
        except ValueError as exc:
            raise ConfigurationError(f"cannot open {self.url}: {exc}") from None
        if not 1 <= size <= MAX_POOL_SIZE:
            raise ConfigurationError(f"cannot open {self.url}: pool_size must be from 1 to {MAX_POOL_SIZE}, got {size}")
        if not 0 <= self.reconnect_timeout <= MAX_RECONNECT_TIMEOUT:  # NaN included
            raise ConfigurationError(
                f"cannot open {self.url}: reconnect_timeout must be seconds from 0 to {MAX_RECONNECT_TIMEOUT:g},"
                f" got {options.get('reconnect_timeout')!r}"
            )
        try:
            psycopg.conninfo.conninfo_to_dict(conninfo)
        except psycopg.ProgrammingError as exc:
            raise ConfigurationError(
                f"cannot open {self.url}: {str(exc).strip()}; Onward's own URL options are"
                f" {' and '.join(_OWN_OPTIONS)}, the others are libpq's connection parameters"
            ) from None
        try:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
                migrate(conn)
        except ConfigurationError as exc:
            raise ConfigurationError(f"cannot open {self.url}: {exc}") from None
        except psycopg.Error as exc:
            message = str(exc).strip().replace("\n", " ")
            password = urlsplit(url).password
            if password:
                message = message.replace(password, "***")
            raise ConfigurationError(
                f"cannot open {self.url}: {message}. Check that the server is running, that the database"
                " exists and that the user may connect to it."
            ) from None
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = psycopg_pool.ConnectionPool(
            conninfo,
            min_size=1,
            max_size=size,
            # Prepared from the first use: the hot statements are few and constant, and a
            # prepared statement skips parsing and analysis on the server.
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT, "prepare_threshold": 0},
            configure=configure,
            timeout=self.reconnect_timeout,
            name=f"onward:{self.url}",
            open=True,
        )
        self._closed = False
        self._lock = threading.Lock()
        self._listeners: dict[threading.Event, frozenset[str] | None] = {}
        self._listener: Listener | None = None
        self._generation = 0  # bumped by every notification: something may be ready

    # -- connections ----------------------------------------------------------------------
    def _closed_error(self) -> StoreClosed:
        return StoreClosed(f"the store {self.url} is closed")

    def _check_open(self) -> None:
        if self._closed:
            raise self._closed_error()

    def _run(self, fn: Callable[[psycopg.Connection[Any], int], T], *, persist: bool = True) -> T:
        """Call ``fn(conn, attempt)`` with a pooled connection. When the connection or the
        server is gone, retry: with backoff for up to ``reconnect_timeout`` seconds when
        ``persist``, else once at once (the pool may have held a stale connection)."""
        deadline = time.monotonic() + self.reconnect_timeout
        attempt = deadlocks = 0
        while True:
            self._check_open()
            conn: psycopg.Connection[Any] | None = None
            try:
                # getconn/putconn rather than the pool's context manager: in autocommit mode
                # there is nothing to commit on the way out, and whatever ``fn`` leaves open is
                # rolled back (or the connection replaced) by ``putconn``.
                conn = self._pool.getconn()
                try:
                    return fn(conn, attempt)
                finally:
                    self._pool.putconn(conn)
            except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
                if self._closed:
                    raise self._closed_error() from exc
                if not _disconnected(exc, conn):
                    raise
                if attempt == 0:
                    self._pool.check()  # drop every idle connection that died with this one
                attempt += 1
                delay = backoff(attempt - 1, 0.05, 1.0) if attempt > 1 else 0.0
                if (not persist and attempt > 1) or time.monotonic() + delay > deadline:
                    raise
                log.warning("lost the connection to %s (%s); retrying", self.url, describe(exc))
                time.sleep(delay)
            except psycopg.errors.DeadlockDetected:
                # Rolled back, nothing written: two transactions took the same rows (members
                # of the same batches, completed together) in opposite orders. Try again.
                deadlocks += 1
                if deadlocks > DEADLOCK_RETRIES:
                    raise
                log.info("deadlock on %s; retrying (%d)", self.url, deadlocks)
            except psycopg_pool.PoolClosed as exc:
                raise self._closed_error() from exc

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with suppress(Exception):
            self._pool.close(timeout=5)

    # -- waking workers -------------------------------------------------------------------
    def add_listener(self, wake: threading.Event) -> None:
        with self._lock:
            self._check_open()
            self._listeners.setdefault(wake, None)
            if self._listener is None:
                self._listener = Listener(self._conninfo, self._notified, CONNECT_TIMEOUT, self._cancel_requested)

    def remove_listener(self, wake: threading.Event) -> None:
        with self._lock:
            self._listeners.pop(wake, None)
            listener = self._listener if not self._listeners else None
            if listener is not None:
                self._listener = None
        if listener is not None:
            listener.close()

    def _cancel_requested(self, job_id: str) -> None:
        """A cancellation of running job ``job_id`` was announced (see ``CancelWatchers``)."""

    def _notified(self, queue: str | None) -> None:
        """A job of ``queue`` (None: of any queue) may be ready: wake the workers serving it."""
        with self._lock:
            self._generation += 1
            targets = [w for w, queues in self._listeners.items() if queue is None or queues is None or queue in queues]
        for wake in targets:
            wake.set()

    def wait_for_jobs(self, queues: Sequence[str] | None, timeout: float, wake: threading.Event) -> None:
        """Sleep until a notification for ``queues`` arrives (or ``timeout``)."""
        with self._lock:
            if wake in self._listeners:
                self._listeners[wake] = frozenset(queues) if queues else None
        wake.wait(timeout)
