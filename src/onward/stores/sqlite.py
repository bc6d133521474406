"""The embedded store: one SQLite file in WAL mode, shared by the processes of one machine.

Durability: ``synchronous=NORMAL`` in WAL mode survives a crash of any process; the last
commits may be lost on power loss or an OS crash. Add ``?synchronous=full`` to the URL
(``sqlite:///jobs.db?synchronous=full``) to survive those too, at about ten times the cost
per commit. WAL needs a local filesystem: never put the file on a network share.

Every write is one short transaction: a single statement in autocommit mode, or
``BEGIN IMMEDIATE`` (so the busy timeout applies) for a few statements. No transaction is
held while user code runs. Each thread gets its own connection.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

from onward.completions import Completion
from onward.errors import ConfigurationError, LeaseLost, OnwardError
from onward.stores.base import CLAIMED_COLUMNS, Checkpoint, Claimed, NewJob, claimed_from_row
from onward.stores.sqlite_admin import ReadingAndAdmin
from onward.stores.sqlite_schema import migrate

BUSY_TIMEOUT_MS = 30_000
_SYNC_MODES = {"off", "normal", "full", "extra"}
_LIVE = ("enqueued", "running")

_CLAIM_COLUMNS = CLAIMED_COLUMNS
_INSERT = (
    "INSERT INTO onward_jobs (id, job_class, queue, priority, args, kwargs, state, max_attempts,"
    " max_resumptions, scheduled_at, enqueued_at, unique_key, parent_id)"
    " VALUES (?, ?, ?, ?, ?, ?, 'enqueued', ?, ?, ?, ?, ?, ?)"
)
_GUARD = " WHERE id = ? AND state = 'running' AND lease_token = ?"
_COMPLETE_CHUNK = 512  # rows per statement at most: 6 parameters each, far below SQLite's limit


def _chunk_sizes(n: int) -> Iterator[int]:
    """``n`` as a sum of powers of two (largest first, none above _COMPLETE_CHUNK): a few
    statement shapes, so each connection's statement cache stays small (one compiled
    statement per batch size would grow a worker's memory by tens of megabytes)."""
    while n:
        size = min(_COMPLETE_CHUNK, 1 << (n.bit_length() - 1))
        yield size
        n -= size


@lru_cache(maxsize=16)
def _complete_many_sql(rows: int) -> str:
    """One UPDATE for ``rows`` successes, each row guarded by its id, state and lease token."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)
    return (
        "UPDATE onward_jobs SET state = 'succeeded', finished_at = ?, result = d.column3, steps = d.column4,"
        " job_state = d.column5, continuation_error = d.column6, lease_token = NULL, lease_expires_at = NULL"
        f" FROM (VALUES {values}) AS d"
        " WHERE onward_jobs.id = d.column1 AND onward_jobs.state = 'running' AND onward_jobs.lease_token = d.column2"
        " RETURNING onward_jobs.id"
    )


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


class SQLiteStore(ReadingAndAdmin):
    """Jobs in one SQLite file. Safe for many threads and many processes on one machine."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        self.path, options = parse_url(url)
        self.url = url
        self.clock = clock
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
        self._found_none = False  # the last claim found nothing ready
        self._lockfile: tuple[int, int] | None = None
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise ConfigurationError(f"cannot open {url}: directory {directory} does not exist")
        try:
            migrate(self._conn())
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open {url}: {exc}") from exc

    def __repr__(self) -> str:
        return f"SQLiteStore({self.url!r})"

    # -- connections ----------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise OnwardError(f"the store {self.url} is closed")
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
                raise OnwardError(f"the store {self.url} is closed")
            self._conns.append(conn)
        self._local.conn = conn
        return conn

    def _check_open(self) -> None:
        if self._closed:
            raise OnwardError(f"the store {self.url} is closed")

    @contextmanager
    def _writer(self) -> Iterator[sqlite3.Connection]:
        """Hold this machine's writer lock: the threads of this process queue on a mutex and
        the processes sharing the file on an ``flock``, both of which hand over at once,
        where SQLite's own busy handler would sleep and retry."""
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

    # -- enqueueing -----------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob]) -> list[str]:
        now = self.clock()
        if len(jobs) == 1 and jobs[0].unique_key is None:
            self._exec_write(_INSERT, _insert_params(jobs[0], now, None))
            ids = [jobs[0].id]
        else:
            with self._write() as conn:
                ids = _insert_jobs(conn, jobs, now, None)
        self._notify()
        return ids

    def start_now(self, job: NewJob, worker_id: str, lease_timeout: float) -> Claimed:
        now = self.clock()
        with self._write() as conn:
            job_id = job.id
            if job.unique_key is not None:
                latest = _latest_with_key(conn, job.unique_key)
                if latest is not None and latest["state"] == "running":
                    raise OnwardError(
                        f"{job.job_class}: a job with unique key {job.unique_key!r} is already running ({latest['id']})"
                    )
                if latest is not None and (
                    latest["state"] == "enqueued" or (latest["state"] == "failed" and not job.fresh)
                ):
                    job_id = latest["id"]
                    if latest["state"] == "failed":
                        conn.execute("UPDATE onward_jobs SET attempts = 0, resume_pending = 0 WHERE id = ?", (job_id,))
            if job_id == job.id:
                conn.execute(_INSERT, _insert_params(job, now, None))
            row = conn.execute(
                "UPDATE onward_jobs SET state = 'running', lease_token = lower(hex(randomblob(8))), worker_id = ?,"
                " lease_timeout = ?, lease_expires_at = ?, started_at = ?, finished_at = NULL,"
                " attempts = attempts + 1 - resume_pending, progressed = 0"
                f" WHERE id = ? RETURNING {_CLAIM_COLUMNS}",
                (worker_id, lease_timeout, now + lease_timeout, now, job_id),
            ).fetchone()
        return claimed_from_row(row)

    # -- running --------------------------------------------------------------------------
    def claim(self, worker_id: str, queues: Sequence[str] | None, lease_timeout: float, limit: int) -> list[Claimed]:
        now = self.clock()
        ready_sql, ready_params = _ready_seqs(queues, now, limit)
        # Idle (the last claim found nothing): look with a plain read before taking the write lock.
        if self._found_none and self._exec(f"SELECT 1 FROM ({ready_sql}) LIMIT 1", ready_params).fetchone() is None:
            return []
        rows = self._exec_returning(
            "UPDATE onward_jobs SET state = 'running', lease_token = lower(hex(randomblob(8))), worker_id = ?,"
            " lease_timeout = ?, lease_expires_at = ?, started_at = ?,"
            " attempts = attempts + 1 - resume_pending, progressed = 0"
            f" WHERE seq IN ({ready_sql}) RETURNING {_CLAIM_COLUMNS}",
            (worker_id, lease_timeout, now + lease_timeout, now, *ready_params),
        )
        self._found_none = not rows
        return sorted((claimed_from_row(r) for r in rows), key=_by_priority)  # RETURNING has no order

    def heartbeat(self, leases: Sequence[tuple[str, str]], lease_timeout: float) -> set[str]:
        if not leases:
            return set()
        expires = self.clock() + lease_timeout
        lost = set()
        with self._write() as conn:
            for job_id, token in leases:
                cur = conn.execute("UPDATE onward_jobs SET lease_expires_at = ?" + _GUARD, (expires, job_id, token))
                if cur.rowcount == 0:
                    lost.add(job_id)
        return lost

    def save_checkpoint(self, job_id: str, token: str, checkpoint: Checkpoint, resumption: bool = False) -> None:
        cur = self._exec_write(
            "UPDATE onward_jobs SET steps = ?, job_state = ?, progressed = progressed | ?,"
            " resumptions = resumptions + ?" + _GUARD,
            (checkpoint.steps, checkpoint.job_state, checkpoint.progressed, int(resumption), job_id, token),
        )
        _guarded(cur, job_id)

    def complete(
        self,
        job_id: str,
        token: str,
        result: str,
        checkpoint: Checkpoint,
        children: Sequence[NewJob],
        continuation_error: str | None,
    ) -> list[str]:
        now = self.clock()
        sql = (
            "UPDATE onward_jobs SET state = 'succeeded', finished_at = ?, result = ?, steps = ?, job_state = ?,"
            " continuation_error = ?, lease_token = NULL, lease_expires_at = NULL" + _GUARD
        )
        params = (now, result, checkpoint.steps, checkpoint.job_state, continuation_error, job_id, token)
        if not children:
            _guarded(self._exec_write(sql, params), job_id)
            return []
        with self._write() as conn:
            _guarded(conn.execute(sql, params), job_id)
            ids = _insert_jobs(conn, children, now, job_id)
        self._notify()
        return ids

    def complete_many(self, done: Sequence[Completion]) -> set[str]:
        """Mark many jobs succeeded (none with continuations) in one transaction: a busy
        worker's successes share one commit. Returns the ids whose lease was lost; those
        are left as they are, exactly as ``complete`` would."""
        if not done:
            return set()
        now = self.clock()
        written: set[str] = set()
        with self._write() as conn:
            start = 0
            for size in _chunk_sizes(len(done)):
                params: list[Any] = [now]
                for c in done[start : start + size]:
                    cp = c.checkpoint
                    params += (c.id, c.token, c.result, cp.steps, cp.job_state, c.continuation_error)
                written.update(row[0] for row in conn.execute(_complete_many_sql(size), params))
                start += size
        return {c.id for c in done} - written

    def unclaim(self, leases: Sequence[tuple[str, str]]) -> None:
        """Give back jobs that were claimed but never started (a worker's prefetched jobs when
        it stops), as if they had not been claimed: no attempt is used."""
        if not leases:
            return
        with self._write() as conn:
            for job_id, token in leases:
                conn.execute(
                    "UPDATE onward_jobs SET state = 'enqueued', attempts = attempts - 1 + resume_pending,"
                    " lease_token = NULL, lease_expires_at = NULL, worker_id = NULL" + _GUARD,
                    (job_id, token),
                )
        self._notify()

    def retry(
        self, job_id: str, token: str, checkpoint: Checkpoint, error: str, delay: float, resumption: bool
    ) -> None:
        self._requeue(job_id, token, checkpoint, error, delay, resumption)

    def interrupt(self, job_id: str, token: str, checkpoint: Checkpoint) -> None:
        self._requeue(job_id, token, checkpoint, None, 0.0, True)

    def _requeue(
        self, job_id: str, token: str, checkpoint: Checkpoint, error: str | None, delay: float, resumption: bool
    ) -> None:
        now = self.clock()
        cur = self._exec_write(
            "UPDATE onward_jobs SET state = 'enqueued', scheduled_at = ?, steps = ?, job_state = ?,"
            " error = COALESCE(?, error), resumptions = resumptions + ?, resume_pending = ?,"
            " lease_token = NULL, lease_expires_at = NULL" + _GUARD,
            (
                now + delay,
                checkpoint.steps,
                checkpoint.job_state,
                error,
                int(resumption),
                int(resumption),
                job_id,
                token,
            ),
        )
        _guarded(cur, job_id)
        self._notify()

    def fail(self, job_id: str, token: str, checkpoint: Checkpoint, error: str, discard: bool = False) -> None:
        cur = self._exec_write(
            "UPDATE onward_jobs SET state = ?, finished_at = ?, steps = ?, job_state = ?, error = ?,"
            " lease_token = NULL, lease_expires_at = NULL" + _GUARD,
            (
                "discarded" if discard else "failed",
                self.clock(),
                checkpoint.steps,
                checkpoint.job_state,
                error,
                job_id,
                token,
            ),
        )
        _guarded(cur, job_id)

    def release(self, job_id: str, token: str) -> None:
        cur = self._exec_write(
            "UPDATE onward_jobs SET state = 'enqueued', scheduled_at = ?, resume_pending = progressed,"
            " resumptions = resumptions + progressed, lease_token = NULL, lease_expires_at = NULL" + _GUARD,
            (self.clock(), job_id, token),
        )
        _guarded(cur, job_id)
        self._notify()

    def reap_expired(self) -> int:
        now = self.clock()
        probe = "SELECT 1 FROM onward_jobs WHERE state = 'running' AND lease_expires_at < ? LIMIT 1"
        if self._exec(probe, (now,)).fetchone() is None:
            return 0
        with self._write() as conn:
            rows = conn.execute(
                "SELECT id, lease_token, attempts, max_attempts, resumptions, max_resumptions, progressed"
                " FROM onward_jobs WHERE state = 'running' AND lease_expires_at < ?",
                (now,),
            ).fetchall()
            for r in rows:
                args = (r["id"], r["lease_token"])
                if r["progressed"]:
                    limit = r["max_resumptions"]
                    if limit is not None and r["resumptions"] + 1 > limit:
                        _fail_lost(conn, now, args, _resume_limit_error(limit))
                    else:
                        conn.execute(
                            "UPDATE onward_jobs SET state = 'enqueued', scheduled_at = ?, resume_pending = 1,"
                            " resumptions = resumptions + 1, lease_token = NULL, lease_expires_at = NULL" + _GUARD,
                            (now, *args),
                        )
                elif r["attempts"] >= r["max_attempts"]:
                    _fail_lost(conn, now, args, LEASE_EXPIRED_ERROR)
                else:
                    conn.execute(
                        "UPDATE onward_jobs SET state = 'enqueued', scheduled_at = ?, resume_pending = 0,"
                        " error = ?, lease_token = NULL, lease_expires_at = NULL" + _GUARD,
                        (now, LEASE_EXPIRED_ERROR, *args),
                    )
        if rows:
            self._notify()
        return len(rows)

    # -- waiting --------------------------------------------------------------------------
    def next_ready_in(self, queues: Sequence[str] | None) -> float | None:
        queue_sql, queue_params = _queue_filter(queues)
        row = self._exec(
            f"SELECT min(scheduled_at) FROM onward_jobs WHERE state = 'enqueued'{queue_sql}", queue_params
        ).fetchone()
        if row is None or row[0] is None:
            return None
        return float(row[0]) - self.clock()

    def wait_for_jobs(self, queues: Sequence[str] | None, timeout: float, wake: threading.Event) -> None:
        """Poll ``PRAGMA data_version`` (changes when another connection commits) every
        millisecond or two: cheap, and it sees commits from other processes."""
        conn = self._conn()
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        deadline = time.monotonic() + timeout
        interval = 0.001
        while not wake.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed:
                return
            if wake.wait(min(interval, remaining)):
                return
            interval = min(interval * 1.25, 0.004)
            current = conn.execute("PRAGMA data_version").fetchone()[0]
            if current != version:
                version = current
                ready = self.next_ready_in(queues)
                if ready is not None and ready <= 0:
                    return


LEASE_EXPIRED_ERROR = "onward.LeaseLost: worker lost: lease expired"


def _resume_limit_error(limit: int) -> str:
    return (
        "onward.ResumeLimitExceeded: worker lost after saving progress;"
        f" resumed more than max_resumptions={limit} times"
    )


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


_READY = (
    "SELECT seq, priority, scheduled_at FROM onward_jobs INDEXED BY {index} WHERE state = 'enqueued'"
    " AND scheduled_at <= ?{queue} ORDER BY priority, scheduled_at, seq LIMIT ?"
)


def _ready_seqs(queues: Sequence[str] | None, now: float, limit: int) -> tuple[str, tuple[Any, ...]]:
    """The ``seq`` of the next ``limit`` ready jobs, read straight off a ready index.

    The indexes are named so that the cost stays the same with a backlog of millions (left
    to itself, the planner may pick the ``state`` index and sort every enqueued row). With
    several queues, each queue's index yields its first ``limit`` rows and those are merged.
    """
    if not queues:
        return "SELECT seq FROM (" + _READY.format(index="onward_jobs_ready", queue="") + ")", (now, limit)
    one = _READY.format(index="onward_jobs_ready_queue", queue=" AND queue = ?")
    if len(queues) == 1:
        return f"SELECT seq FROM ({one})", (now, queues[0], limit)
    union = " UNION ALL ".join(f"SELECT * FROM ({one})" for _ in queues)
    params: list[Any] = []
    for name in queues:
        params += [now, name, limit]
    return f"SELECT seq FROM ({union}) ORDER BY priority, scheduled_at, seq LIMIT ?", (*params, limit)


def _queue_filter(queues: Sequence[str] | None) -> tuple[str, tuple[str, ...]]:
    if not queues:
        return "", ()
    return f" AND queue IN ({', '.join('?' * len(queues))})", tuple(queues)


def _insert_params(job: NewJob, now: float, parent_id: str | None) -> tuple[Any, ...]:
    scheduled = job.run_at if job.run_at is not None else now + job.delay
    return (
        job.id,
        job.job_class,
        job.queue,
        job.priority,
        job.args,
        job.kwargs,
        job.max_attempts,
        job.max_resumptions,
        scheduled,
        now,
        job.unique_key,
        parent_id,
    )


def _latest_with_key(conn: sqlite3.Connection, key: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT id, state FROM onward_jobs WHERE unique_key = ? ORDER BY seq DESC LIMIT 1", (key,)
    ).fetchone()
    return row


def _insert_jobs(conn: sqlite3.Connection, jobs: Sequence[NewJob], now: float, parent_id: str | None) -> list[str]:
    """Insert inside an open write transaction, deduplicating unique keys."""
    ids = []
    for job in jobs:
        if job.unique_key is not None:
            latest = _latest_with_key(conn, job.unique_key)
            if latest is not None and latest["state"] in _LIVE:
                ids.append(latest["id"])
                continue
            if latest is not None and latest["state"] == "failed" and not job.fresh:
                scheduled = job.run_at if job.run_at is not None else now + job.delay
                conn.execute(
                    "UPDATE onward_jobs SET state = 'enqueued', attempts = 0, resume_pending = 0,"
                    " scheduled_at = ?, finished_at = NULL WHERE id = ?",
                    (scheduled, latest["id"]),
                )
                ids.append(latest["id"])
                continue
        conn.execute(_INSERT, _insert_params(job, now, parent_id))
        ids.append(job.id)
    return ids


def _fail_lost(conn: sqlite3.Connection, now: float, guard: tuple[str, str], error: str) -> None:
    conn.execute(
        "UPDATE onward_jobs SET state = 'failed', finished_at = ?, error = ?,"
        " lease_token = NULL, lease_expires_at = NULL" + _GUARD,
        (now, error, *guard),
    )


def _guarded(cur: sqlite3.Cursor, job_id: str) -> None:
    if cur.rowcount == 0:
        raise LeaseLost(f"job {job_id} is no longer running under this execution's lease")


def _by_priority(job: Claimed) -> int:
    return job.priority
