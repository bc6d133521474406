"""The PostgreSQL store: many workers on many hosts against one database.

Workers claim with ``FOR UPDATE SKIP LOCKED`` off a partial index of ready jobs, several at
a time, in one statement. Every state change is one guarded statement (``WHERE id = %s AND
state = 'running' AND lease_token = %s``); completing a job and inserting its continuations
is one statement too. Leases and schedules are compared with the database's ``now()``, so
worker clocks do not matter. Idle workers sleep until ``NOTIFY`` wakes them
(:mod:`onward.stores.postgres_listen`) and look on their own only as a fallback.

Connections come from a ``psycopg_pool`` pool (``?pool_size=N`` in the URL, default 20;
connections open on demand). When the server goes away, writes that an execution depends on
(checkpoints, outcomes, heartbeats, enqueues) retry with backoff for up to
``?reconnect_timeout=S`` seconds (default 30), so a server restart costs neither progress nor
results.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg_pool

from onward.completions import Completion
from onward.errors import ConfigurationError, LeaseLost, OnwardError
from onward.stores import mask_url
from onward.stores import postgres_sql as q
from onward.stores.base import Checkpoint, Claimed, NewJob, claimed_from_row
from onward.stores.postgres_admin import ReadingAndAdmin
from onward.stores.postgres_listen import Listener
from onward.stores.postgres_schema import migrate

log = logging.getLogger("onward.store")

T = TypeVar("T")

DEFAULT_POOL_SIZE = 20
DEFAULT_RECONNECT_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10
#: Longest an idle worker goes without looking for jobs when no notification came.
FALLBACK_POLL = 1.0
_OWN_OPTIONS = ("pool_size", "reconnect_timeout")


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """The libpq URL (Onward's own query options removed) and those options."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in pairs if k in _OWN_OPTIONS}
    rest = [(k, v) for k, v in pairs if k not in _OWN_OPTIONS]
    return urlunsplit(parts._replace(query=urlencode(rest))), own


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


class PostgresStore(ReadingAndAdmin):
    """Jobs in a PostgreSQL database; safe for any number of processes and hosts."""

    def __init__(self, url: str, *, pool_size: int | None = None) -> None:
        self.url = mask_url(url)
        conninfo, options = split_url(url)
        self._conninfo = conninfo
        try:
            size = int(options.get("pool_size", pool_size or DEFAULT_POOL_SIZE))
            self.reconnect_timeout = float(options.get("reconnect_timeout", DEFAULT_RECONNECT_TIMEOUT))
        except ValueError as exc:
            raise ConfigurationError(f"cannot open {self.url}: {exc}") from None
        if size < 1:
            raise ConfigurationError(f"cannot open {self.url}: pool_size must be at least 1")
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
            timeout=self.reconnect_timeout,
            name=f"onward:{self.url}",
            open=True,
        )
        self._closed = False
        self._lock = threading.Lock()
        self._listeners: dict[threading.Event, frozenset[str] | None] = {}
        self._listener: Listener | None = None
        self._generation = 0  # bumped by every notification: something may be ready
        self._idle: dict[tuple[str, tuple[str, ...] | None], tuple[int, float]] = {}

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    # -- connections ----------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise OnwardError(f"the store {self.url} is closed")

    def _run(self, fn: Callable[[psycopg.Connection[Any], int], T], *, persist: bool = True) -> T:
        """Call ``fn(conn, attempt)`` with a pooled connection. When the connection or the
        server is gone, retry: with backoff for up to ``reconnect_timeout`` seconds when
        ``persist``, else once at once (the pool may have held a stale connection)."""
        deadline = time.monotonic() + self.reconnect_timeout
        delay = 0.05
        attempt = 0
        while True:
            self._check_open()
            conn: psycopg.Connection[Any] | None = None
            try:
                with self._pool.connection() as conn:
                    return fn(conn, attempt)
            except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
                if self._closed:
                    raise OnwardError(f"the store {self.url} is closed") from exc
                if not _disconnected(exc, conn):
                    raise
                if attempt == 0:
                    self._pool.check()  # drop every idle connection that died with this one
                attempt += 1
                if (not persist and attempt > 1) or time.monotonic() + delay > deadline:
                    raise
                log.warning("lost the connection to %s (%s); retrying", self.url, str(exc).strip())
                if attempt > 1:
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)
            except psycopg_pool.PoolClosed as exc:
                raise OnwardError(f"the store {self.url} is closed") from exc

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
                self._listener = Listener(self._conninfo, self._notified, CONNECT_TIMEOUT)

    def remove_listener(self, wake: threading.Event) -> None:
        with self._lock:
            self._listeners.pop(wake, None)
            listener = self._listener if not self._listeners else None
            if listener is not None:
                self._listener = None
        if listener is not None:
            listener.close()

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

    def next_ready_in(self, queues: Sequence[str] | None) -> float | None:
        def run(conn: psycopg.Connection[Any], attempt: int) -> Any:
            if queues:
                return conn.execute(q.NEXT_DUE_QUEUES, (list(queues),)).fetchone()
            return conn.execute(q.NEXT_DUE_ANY).fetchone()

        row = self._run(run, persist=False)
        return None if row is None or row[0] is None else float(row[0])

    # -- enqueueing -----------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob]) -> list[str]:
        if not jobs:
            return []
        unique = any(job.unique_key is not None for job in jobs)

        def run(conn: psycopg.Connection[Any], attempt: int) -> list[str]:
            if attempt and conn.execute("SELECT 1 FROM onward_jobs WHERE id = %s", (jobs[0].id,)).fetchone():
                return _ids_after_commit(conn, jobs)  # the first try committed; its reply was lost
            if not unique:
                return q.insert_jobs(conn, jobs)
            with conn.transaction():
                return q.insert_jobs(conn, jobs)

        ids = self._run(run)
        self._notified(None)
        return ids

    def start_now(self, job: NewJob, worker_id: str, lease_timeout: float) -> Claimed:
        def run(conn: psycopg.Connection[Any], attempt: int) -> Claimed:
            with conn.transaction():
                job_id = job.id
                if job.unique_key is not None:
                    q.lock_keys(conn, [job.unique_key])
                    latest = q.latest_with_key(conn, job.unique_key)
                    q.running_with_key(job, latest)
                    if latest is not None and (latest[1] == "enqueued" or (latest[1] == "failed" and not job.fresh)):
                        job_id = latest[0]
                        if latest[1] == "failed":
                            conn.execute(
                                "UPDATE onward_jobs SET attempts = 0, resume_pending = false WHERE id = %s", (job_id,)
                            )
                if job_id == job.id:
                    conn.execute(
                        "INSERT INTO onward_jobs (id, job_class, queue, priority, args, kwargs, state, max_attempts,"
                        " max_resumptions, scheduled_at, enqueued_at, unique_key)"
                        " VALUES (%s, %s, %s, %s, %s, %s, 'enqueued', %s, %s, now(), now(), %s)",
                        (
                            job.id,
                            job.job_class,
                            job.queue,
                            job.priority,
                            job.args,
                            job.kwargs,
                            job.max_attempts,
                            job.max_resumptions,
                            job.unique_key,
                        ),
                    )
                row = conn.execute(
                    "UPDATE onward_jobs SET state = 'running', lease_token = gen_random_uuid()::text, worker_id = %s,"
                    " lease_timeout = %s, lease_expires_at = now() + make_interval(secs => %s), started_at = now(),"
                    " finished_at = NULL, attempts = attempts + 1 - resume_pending::int, progressed = false"
                    f" WHERE id = %s RETURNING {q.CLAIM_COLUMNS}",
                    (worker_id, lease_timeout, lease_timeout, job_id),
                ).fetchone()
            assert row is not None
            return claimed_from_row(row)

        return self._run(run)

    # -- running --------------------------------------------------------------------------
    def claim(self, worker_id: str, queues: Sequence[str] | None, lease_timeout: float, limit: int) -> list[Claimed]:
        """Claim up to ``limit`` ready jobs. After finding none, a worker does not ask the
        database again until a notification arrives, the next scheduled job is due, or
        ``FALLBACK_POLL`` seconds passed; this holds only while this process is listening
        (a worker is running): without notifications every call asks the database."""
        if limit < 1:
            return []
        key = (worker_id, tuple(queues) if queues else None)
        generation = self._generation
        idle = self._idle.get(key)
        listener = self._listener
        if (
            idle is not None
            and idle[0] == generation
            and time.monotonic() < idle[1]
            and listener is not None
            and listener.connected.is_set()
        ):
            return []  # nothing was notified since this worker last found nothing

        lease = (worker_id, lease_timeout, lease_timeout)
        params: tuple[Any, ...]
        if not queues:
            sql, params = q.claim_sql("any", limit), lease
        elif len(queues) == 1:
            sql, params = q.claim_sql("one", limit), (queues[0], *lease, queues[0])
        else:
            sql, params = q.claim_sql("many", limit), (list(queues), *lease, list(queues))

        def run(conn: psycopg.Connection[Any], attempt: int) -> list[Any]:
            return conn.execute(sql, params).fetchall()

        rows = self._run(run, persist=False)
        if rows and rows[0][0] is not None:
            self._idle.pop(key, None)
            return [claimed_from_row(r) for r in rows]
        due = rows[0][-1] if rows else None
        wait = FALLBACK_POLL
        if due is not None:
            wait = max(0.0, min(wait, float(due)))
        if len(self._idle) > 1000:
            self._idle.clear()
        self._idle[key] = (generation, time.monotonic() + wait)
        return []

    def heartbeat(self, leases: Sequence[tuple[str, str]], lease_timeout: float) -> set[str]:
        if not leases:
            return set()
        ids = [job_id for job_id, _ in leases]
        tokens = [token for _, token in leases]

        def run(conn: psycopg.Connection[Any], attempt: int) -> set[str]:
            rows = conn.execute(q.HEARTBEAT, (q.json_rows(ids, tokens), lease_timeout)).fetchall()
            return {r[0] for r in rows}

        kept = self._run(run)
        return set(ids) - kept

    def save_checkpoint(self, job_id: str, token: str, checkpoint: Checkpoint, resumption: bool = False) -> None:
        params = (checkpoint.steps, checkpoint.job_state, checkpoint.progressed, int(resumption), job_id, token)
        self._guarded(q.SAVE_CHECKPOINT, params, job_id)

    def complete(
        self,
        job_id: str,
        token: str,
        result: str,
        checkpoint: Checkpoint,
        children: Sequence[NewJob],
        continuation_error: str | None,
    ) -> list[str]:
        params = (result, checkpoint.steps, checkpoint.job_state, continuation_error, job_id, token)
        if not children:
            self._guarded(q.COMPLETE, params, job_id)
            return []

        def run(conn: psycopg.Connection[Any], attempt: int) -> list[str] | None:
            if any(c.unique_key is not None for c in children):
                with conn.transaction():
                    row = conn.execute(q.COMPLETE, params).fetchone()
                    if row is None:
                        return None
                    return q.insert_jobs(conn, children, job_id, row[0])
            done = conn.execute(q.COMPLETE_WITH_CHILDREN, (*params, job_id, q.complete_columns(children))).fetchone()
            return [c.id for c in children] if done and done[0] else None

        ids = self._run(run)
        if ids is None:
            raise _lease_lost(job_id)
        self._notified(None)
        return ids

    def complete_many(self, done: Sequence[Completion]) -> set[str]:
        """Mark many jobs succeeded (none with continuations) in one statement, so a busy
        worker's successes share one commit; returns the ids whose lease was lost (those
        are left as they are, as ``complete`` would)."""
        if not done:
            return set()
        rows = json.dumps(
            [(c.id, c.token, c.result, c.checkpoint.steps, c.checkpoint.job_state, c.continuation_error) for c in done],
            ensure_ascii=False,
            separators=(",", ":"),
        )

        def run(conn: psycopg.Connection[Any], attempt: int) -> set[str]:
            return {r[0] for r in conn.execute(q.COMPLETE_MANY, (rows,)).fetchall()}

        return {c.id for c in done} - self._run(run)

    def unclaim(self, leases: Sequence[tuple[str, str]]) -> None:
        """Give back jobs claimed but never started (a stopping worker's prefetched jobs), as
        if they had not been claimed: no attempt is used."""
        if not leases:
            return
        ids, tokens = [i for i, _ in leases], [t for _, t in leases]
        rows = q.json_rows(ids, tokens)
        self._run(lambda conn, attempt: conn.execute(q.UNCLAIM, (rows,)))
        self._notified(None)

    def retry(
        self, job_id: str, token: str, checkpoint: Checkpoint, error: str, delay: float, resumption: bool
    ) -> None:
        self._requeue(job_id, token, checkpoint, error, delay, resumption)

    def interrupt(self, job_id: str, token: str, checkpoint: Checkpoint) -> None:
        self._requeue(job_id, token, checkpoint, None, 0.0, True)

    def _requeue(
        self, job_id: str, token: str, checkpoint: Checkpoint, error: str | None, delay: float, resumption: bool
    ) -> None:
        params = (
            delay,
            checkpoint.steps,
            checkpoint.job_state,
            error,
            int(resumption),
            resumption,
            job_id,
            token,
        )
        self._guarded(q.REQUEUE, params, job_id)
        self._notified(None)

    def fail(self, job_id: str, token: str, checkpoint: Checkpoint, error: str, discard: bool = False) -> None:
        state = "discarded" if discard else "failed"
        self._guarded(q.FAIL, (state, checkpoint.steps, checkpoint.job_state, error, job_id, token), job_id)

    def release(self, job_id: str, token: str) -> None:
        self._guarded(q.RELEASE, (job_id, token), job_id)
        self._notified(None)

    def _guarded(self, sql: str, params: Sequence[Any], job_id: str) -> None:
        def run(conn: psycopg.Connection[Any], attempt: int) -> int:
            return conn.execute(sql, params).rowcount

        if self._run(run) == 0:
            raise _lease_lost(job_id)

    def reap_expired(self) -> int:
        def run(conn: psycopg.Connection[Any], attempt: int) -> tuple[int, int]:
            row = conn.execute(q.REAP, (q.LEASE_EXPIRED_ERROR,)).fetchone()
            return (int(row[0]), int(row[1])) if row else (0, 0)

        reaped, requeued = self._run(run, persist=False)
        if requeued:
            self._notified(None)
        return reaped


def _lease_lost(job_id: str) -> LeaseLost:
    return LeaseLost(f"job {job_id} is no longer running under this execution's lease")


def _ids_after_commit(conn: psycopg.Connection[Any], jobs: Sequence[NewJob]) -> list[str]:
    """The ids an ``enqueue`` returned, recovered after its commit's reply was lost."""
    ids = []
    for job in jobs:
        if conn.execute("SELECT 1 FROM onward_jobs WHERE id = %s", (job.id,)).fetchone() or job.unique_key is None:
            ids.append(job.id)
        else:
            latest = q.latest_with_key(conn, job.unique_key)
            ids.append(latest[0] if latest else job.id)
    return ids
