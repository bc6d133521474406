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

from onward.errors import ConfigurationError, OnwardError, StoreClosed, StoreFileError, StoreFileGone
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


def _identity(path: str) -> tuple[int, int] | None:
    """The device and inode of the file at ``path`` (``None`` when there is none)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


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
            problem = self._file_error(exc)
            raise ConfigurationError(f"cannot open {url}: {problem or exc}") from exc
        self._identity = _identity(self.path)

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
            except sqlite3.DatabaseError as exc:
                problem = self._file_error(exc)
                if problem is None:
                    raise
                raise problem from exc
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
                if conn.in_transaction:  # SQLite ends it itself on some errors (a full disk)
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _exec_write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """One write statement in autocommit mode, under the writer lock (what :meth:`_writer`
        does, without a generator: this is every ``perform_later``)."""
        self._check_open()
        conn = self._conn()
        with self._wlock:
            fd = self._lock_fd()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                return conn.execute(sql, params)
            except sqlite3.DatabaseError as exc:
                problem = self._file_error(exc)
                if problem is None:
                    raise
                raise problem from exc
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _exec_returning(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._writer() as conn:
            return conn.execute(sql, params).fetchall()

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """One statement on this thread's connection (a read, outside any lock)."""
        self._check_open()
        try:
            return self._conn().execute(sql, params)
        except sqlite3.DatabaseError as exc:
            problem = self._file_error(exc)
            if problem is None:
                raise
            raise problem from exc

    # -- the file -------------------------------------------------------------------------
    def _file_error(self, exc: sqlite3.Error) -> OnwardError | None:
        """What to tell the user when ``exc`` means the file itself is unusable (``None``
        for any other error: a constraint, a busy database...)."""
        name = str(getattr(exc, "sqlite_errorname", "") or "")
        path = self.path
        if name.startswith("SQLITE_FULL"):
            return StoreFileError(
                f"the store {path} cannot grow: the disk is full ({exc}); free disk space (onward purge"
                " deletes old finished jobs), then try again"
            )
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            return StoreFileError(
                f"the store {path} is damaged or is not an Onward store ({exc}); stop every process using it,"
                " then restore it from a backup, or move it aside to start with an empty store"
            )
        if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
            return StoreFileError(
                f"cannot write the store {path} ({exc}); check that the file and its directory are writable"
                " by this user and on a local disk"
            )
        if name.startswith("SQLITE_IOERR"):
            return StoreFileError(
                f"the store {path} cannot be read or written ({exc}); check the disk, and that the file is"
                " on a local filesystem (not a network share)"
            )
        return None

    def check_file(self) -> None:
        """``StoreFileGone`` (and the store closed) if the file at this store's path was deleted
        or replaced since it was opened: this process would go on using the old file, unseen by
        every process that opens the path. A worker calls it every second or so."""
        now = _identity(self.path)
        if now == self._identity:
            return
        what = "deleted" if now is None else "replaced by another file"
        self.close()
        raise StoreFileGone(
            f"the store {self.path} was {what} while this process had it open; jobs in a new file at that"
            " path would never be seen here. Restart the process to use the file now at that path"
        )

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
