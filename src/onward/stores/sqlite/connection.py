"""Connections to one SQLite file: one per thread, and the writer lock shared by every process.

Durability: ``synchronous=NORMAL`` in WAL mode survives a crash of any process; the last
commits may be lost on power loss or an OS crash. Add ``?synchronous=full`` to the URL
(``sqlite:///jobs.db?synchronous=full``) to survive those too, at about ten times the cost
per commit. WAL needs a local filesystem: never put the file on a network share.

Every write is one short transaction: a single statement in autocommit mode, or
``BEGIN IMMEDIATE`` (so the busy timeout applies) for a few statements, under the writer lock
(a mutex for this process's threads and an ``flock`` for the processes sharing the file, both
of which hand over at once where SQLite's own busy handler would sleep and retry). No
transaction is held while user code runs.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import parse_qs

from onward.errors import ConfigurationError, StoreClosed
from onward.stores.sqlite.schema import migrate

__all__ = ["BUSY_TIMEOUT_MS", "SQLiteConnections", "parse_url"]

BUSY_TIMEOUT_MS = 30_000
_SYNC_MODES = {"off", "normal", "full", "extra"}
_OPTIONS = ("synchronous",)


def parse_url(url: str) -> tuple[str, dict[str, str]]:
    """``sqlite:///rel.db`` -> absolute path (resolved now) and query options."""
    rest = url[len("sqlite:") :]
    if not rest.startswith("//"):
        raise ConfigurationError(f"cannot open {url}: write sqlite:///relative.db or sqlite:////absolute/path.db")
    rest = rest[2:]
    rest, _, query = rest.partition("?")
    if not rest.startswith("/") or rest == "/":
        raise ConfigurationError(f"cannot open {url}: no file path; write sqlite:///onward.sqlite3")
    path = rest[1:]  # sqlite:///rel -> "rel"; sqlite:////abs -> "/abs"
    options = {k: v[-1] for k, v in parse_qs(query).items()}
    return os.path.abspath(path), options


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, retrying: on a fresh file, processes opening it at once may see
    'database is locked' here even with a busy timeout."""
    for attempt in range(50):
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.01 + 0.01 * attempt)


class SQLiteConnections:
    """This process's connections to the file at ``url``, its writer lock, and the local
    listeners woken when this process makes jobs ready."""

    def __init__(self, url: str, clock: Callable[[], float], *, must_exist: bool = False) -> None:
        self.path, options = parse_url(url)
        self.url = url
        self.clock = clock
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ConfigurationError(
                f"cannot open {url}: unknown URL option {', '.join(map(repr, unknown))}; a SQLite URL takes"
                f" {', '.join(_OPTIONS)}"
            )
        sync = options.get("synchronous", "normal").lower()
        if sync not in _SYNC_MODES:
            raise ConfigurationError(f"cannot open {url}: synchronous must be one of {sorted(_SYNC_MODES)}")
        self._synchronous = sync
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._listeners: set[threading.Event] = set()
        self._closed = False
        self._wlock = threading.Lock()
        self._lockfile: tuple[int, int] | None = None
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise ConfigurationError(f"cannot open {url}: directory {directory} does not exist")
        if must_exist and not os.path.exists(self.path):
            raise ConfigurationError(
                f"there is no Onward store at {self.path} (no such file); check the path or --database-url"
                " (a worker or an enqueue creates the store)"
            )
        try:
            migrate(self._conn())
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open {url}: {exc}") from exc

    # -- connections ----------------------------------------------------------------------
    def _closed_error(self) -> StoreClosed:
        return StoreClosed(f"the store {self.url} is closed")

    def _check_open(self) -> None:
        if self._closed:
            raise self._closed_error()

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise self._closed_error()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _enable_wal(conn)
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        with self._conns_lock:
            if self._closed:
                conn.close()
                raise self._closed_error()
            self._conns.append(conn)
        self._local.conn = conn
        return conn

    @contextmanager
    def _writer(self) -> Iterator[sqlite3.Connection]:
        """Hold this machine's writer lock (see the module's docstring)."""
        self._check_open()
        conn = self._conn()
        with self._wlock:
            fd = self._lock_fd()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield conn
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _lock_fd(self) -> int:
        pid = os.getpid()
        if self._lockfile is None or self._lockfile[0] != pid:  # not inherited across fork
            self._lockfile = (pid, os.open(self.path + "-writer", os.O_RDWR | os.O_CREAT, 0o644))
        return self._lockfile[1]

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front."""
        with self._writer() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _exec_write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """One write statement in autocommit mode, under the writer lock."""
        with self._writer() as conn:
            return conn.execute(sql, params)

    def _exec_returning(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._writer() as conn:
            return conn.execute(sql, params).fetchall()

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """One statement on this thread's connection (a read, outside any lock)."""
        self._check_open()
        return self._conn().execute(sql, params)

    def close(self) -> None:
        with self._conns_lock:
            self._closed = True
            conns, self._conns = self._conns, []
        for conn in conns:
            with suppress(sqlite3.Error):
                conn.close()

    # -- listeners ------------------------------------------------------------------------
    def add_listener(self, wake: threading.Event) -> None:
        self._listeners.add(wake)

    def remove_listener(self, wake: threading.Event) -> None:
        self._listeners.discard(wake)

    def _notify(self) -> None:
        for wake in list(self._listeners):
            wake.set()
