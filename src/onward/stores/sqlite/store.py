"""The embedded store: one SQLite file in WAL mode, shared by the processes of one machine.

See :mod:`onward.stores.sqlite.connection` for connections, locking and durability; the SQL
is in :mod:`onward.stores.sqlite.sql`, reading and administration in
:mod:`onward.stores.sqlite.admin`.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Sequence
from typing import Any

from onward import lifecycle
from onward.errors import ConfigurationError, LeaseLost
from onward.lifecycle import KeyUse, Verdict
from onward.stores._common import chunk_sizes, claimed_from_row
from onward.stores.base import Checkpoint, Claimed, Completion, Inserter, NewBatch, NewJob, Renewal, TakenBack
from onward.stores.sqlite import limit_sql, sql
from onward.stores.sqlite.admin import SQLiteAdmin
from onward.stores.sqlite.connection import SQLiteConnections
from onward.stores.sqlite.inserts import insert_batches, insert_jobs, insert_params, key_use
from onward.stores.sqlite.limits import claim_limited
from onward.stores.sqlite.schedules import SQLiteSchedules
from onward.stores.sqlite.waiting import SQLiteWaiting

__all__ = ["SQLiteStore"]

_PRIORITY = operator.itemgetter(3)  # of a claimed row (``CLAIMED_COLUMNS``)
_FIRST = operator.itemgetter(0)
_ID = operator.attrgetter("id")
_MEMBER = operator.attrgetter("member")
_LIMIT_KEY = 19  # of a row claimed with limits applied (``sql.claim_seqs_sql``)


class SQLiteStore(SQLiteAdmin, SQLiteSchedules, SQLiteWaiting):
    """Jobs in one SQLite file. Safe for many threads and many processes on one machine."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time, must_exist: bool = False) -> None:
        SQLiteConnections.__init__(self, url, clock, must_exist=must_exist)
        SQLiteWaiting.__init__(self)
        self._found_none = False  # the last claim found nothing ready
        # Workers (with their queues) whose last claim met jobs with limits: their next claim
        # applies limits at once (claiming jobs without limits too), in one write transaction.
        self._limited: set[tuple[str, tuple[str, ...] | None]] = set()
        # Lease tokens of the running jobs this store claimed with a limit key: their state
        # changes take the tracked statements at once (see ``sql.TRACKED``). Only a shortcut:
        # a job missing here takes the untracked statement, which refuses it, then the tracked one.
        self._keyed: set[str] = set()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.url!r})"

    # -- enqueueing -----------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob], batches: Sequence[NewBatch] = ()) -> list[str]:
        now = self.clock()
        if len(jobs) == 1 and jobs[0].unique_key is None and not batches:
            self._exec_write(sql.INSERT, insert_params(jobs[0], now, None))
            ids = [jobs[0].id]
        else:
            with self._write() as conn:
                ids = insert_jobs(conn, jobs, now, None)
                if batches:
                    ids += insert_batches(conn, batches, now)
        self._notify()
        return ids

    def join_transaction(self, connection: Any) -> Inserter:
        raise ConfigurationError(
            f"onward.transaction() needs the PostgreSQL store, but the store is {self.url}; connect with"
            " onward.connect('postgresql://...') (on SQLite, enqueue after your transaction commits)"
        )

    def start_now(self, job: NewJob, worker_id: str, lease_timeout: float) -> Claimed:
        now = self.clock()
        with self._write() as conn:
            use, latest = key_use(conn, job, now=True)
            if use == KeyUse.NEW:
                conn.execute(sql.INSERT, insert_params(job, now, None))
                job_id = job.id
            else:
                assert latest is not None
                job_id = latest
                if use == KeyUse.RERUN:
                    conn.execute(sql.RESET_ATTEMPTS, (job_id,))
            row = conn.execute(sql.START_NOW, (worker_id, lease_timeout, now + lease_timeout, now, job_id)).fetchone()
        return claimed_from_row(row)

    # -- running --------------------------------------------------------------------------
    def claim(self, worker_id: str, queues: Sequence[str] | None, lease_timeout: float, limit: int) -> list[Claimed]:
        now = self.clock()
        key = (worker_id, tuple(queues) if queues else None)
        if key in self._limited:
            with self._write() as conn:
                rows, limited = claim_limited(conn, worker_id, queues, lease_timeout, limit, now)
            if limited:
                self._keep_keyed(rows)
            if len(rows) < limit or not limited:  # the claim statement looks again (and says what waits)
                self._limited.discard(key)
            if rows:
                self._found_none = False
                return [claimed_from_row(r) for r in sorted(rows, key=_PRIORITY)]
        ready_sql, ready_params = sql.ready_seqs(queues, now, limit)
        # Idle (the last claim found nothing): look with a plain read before taking the write lock.
        if (
            self._found_none
            and self._exec(f"SELECT 1 FROM ({ready_sql}) LIMIT 1", ready_params).fetchone() is None
            and self._exec(limit_sql.HOLDS_DUE, (now,)).fetchone() is None
        ):
            return []
        rows = self._exec_returning(
            sql.claim_sql(queues), (worker_id, lease_timeout, now + lease_timeout, now, *ready_params)
        )
        if len(rows) < limit and self._limited_waiting(queues, limit, now):
            with self._write() as conn:  # jobs with limits are among the first ready ones, or held ones are due
                more, limited = claim_limited(conn, worker_id, queues, lease_timeout, limit - len(rows), now)
            if limited:
                self._keep_keyed(more)
            rows += more
            if len(rows) == limit and limited:
                self._limited.add(key)
        self._found_none = not rows
        return [claimed_from_row(r) for r in sorted(rows, key=_PRIORITY)]  # RETURNING has no order

    def _keep_keyed(self, rows: Sequence[Any]) -> None:
        self._keyed.update(r[10] for r in rows if r[_LIMIT_KEY] is not None)  # 10: the lease token

    def _change(
        self, untracked: str, tracked: str, params: Sequence[Any], token: str, member: bool = False, conn: Any = None
    ) -> int:
        """Change the state of a running job (one statement, ``params`` ending in its id and
        lease token; in ``conn``'s transaction, else in one of its own): with the untracked
        statement first unless the job is known to have a batch or a limit key, then the
        tracked one if the first changed nothing (see ``sql.TRACKED``). Returns how many rows
        changed (0: the lease is lost)."""
        execute = self._exec_write if conn is None else conn.execute
        if member or token in self._keyed:
            self._keyed.discard(token)
            return int(execute(tracked, params).rowcount)
        return int(execute(untracked, params).rowcount or execute(tracked, params).rowcount)

    def _limited_waiting(self, queues: Sequence[str] | None, limit: int, now: float) -> bool:
        """Whether jobs with a limit key are among the first ready ones, or held jobs are due."""
        rows_sql, params = sql.ready_rows(queues, now, limit)
        if self._exec(f"SELECT 1 FROM ({rows_sql}) WHERE limit_key IS NOT NULL LIMIT 1", params).fetchone():
            return True
        return self._exec(limit_sql.HOLDS_DUE, (now,)).fetchone() is not None

    def heartbeat(self, leases: Sequence[tuple[str, str]], lease_timeout: float) -> set[str]:
        return self.renew(leases, lease_timeout).lost

    def renew(self, leases: Sequence[tuple[str, str]], lease_timeout: float) -> Renewal:
        if not leases:
            return Renewal(set(), set())
        expires = self.clock() + lease_timeout
        lost, cancel = set(), set()
        with self._write() as conn:
            for job_id, token in leases:
                row = conn.execute(sql.HEARTBEAT, (expires, job_id, token)).fetchone()
                if row is None:
                    lost.add(job_id)
                elif row[0]:
                    cancel.add(job_id)
        return Renewal(lost, cancel)

    def cancel_running(self, job_id: str, token: str, checkpoint: Checkpoint, error: str | None = None) -> None:
        params = (self.clock(), checkpoint.steps, checkpoint.job_state, error, job_id, token)
        self._keyed.discard(token)
        _guarded(self._exec_write(sql.CANCEL_RUNNING, params).rowcount, job_id)

    def save_checkpoint(self, job_id: str, token: str, checkpoint: Checkpoint, resumption: bool = False) -> None:
        cur = self._exec_write(
            sql.SAVE_CHECKPOINT,
            (checkpoint.steps, checkpoint.job_state, checkpoint.progressed, int(resumption), job_id, token),
        )
        _guarded(cur.rowcount, job_id)

    def complete(
        self,
        job_id: str,
        token: str,
        result: str,
        checkpoint: Checkpoint,
        children: Sequence[NewJob],
        continuation_error: str | None,
        batches: Sequence[NewBatch] = (),
        *,
        member: bool = False,
    ) -> list[str]:
        now = self.clock()
        params = (now, result, checkpoint.steps, checkpoint.job_state, continuation_error, job_id, token)
        if not children and not batches:
            _guarded(self._change(sql.COMPLETE, sql.COMPLETE_TRACKED, params, token, member), job_id)
            if member:
                self._notify()
            return []
        with self._write() as conn:
            _guarded(self._change(sql.COMPLETE, sql.COMPLETE_TRACKED, params, token, member, conn), job_id)
            ids = insert_jobs(conn, children, now, job_id)
            if batches:
                ids += insert_batches(conn, batches, now)
        self._notify()
        return ids

    def commit_continuations(
        self, job_id: str, children: Sequence[NewJob], error: str | None, batches: Sequence[NewBatch] = ()
    ) -> list[str] | None:
        now = self.clock()
        with self._write() as conn:
            if conn.execute(sql.SET_CONTINUATION_ERROR, (error, job_id)).rowcount == 0:
                return None
            ids = insert_jobs(conn, children, now, job_id) if error is None else []
            if error is None and batches:
                ids += insert_batches(conn, batches, now)
        if ids:
            self._notify()
        return ids

    def complete_many(self, done: Sequence[Completion]) -> set[str]:
        if not done:
            return set()
        now = self.clock()
        keyed = self._keyed
        tracked = [c for c in done if c.member or c.token in keyed] if keyed or any(map(_MEMBER, done)) else []
        for c in tracked:
            keyed.discard(c.token)
        with self._write() as conn:
            written = _complete_in(conn, done, now, tracked)
            inserted = _insert_children(conn, done, written, now)
        if inserted or any(map(_MEMBER, done)):
            self._notify()
        return set() if len(written) == len(done) else set(map(_ID, done)) - written

    def take_over(self, worker_id: str, ran: Sequence[tuple[str, str]], succeeded: Sequence[Completion]) -> int:
        now = self.clock()
        started = {token for _, token in ran}
        with self._write() as conn:
            written = _complete_in(conn, succeeded, now, succeeded) if succeeded else set()
            inserted = _insert_children(conn, succeeded, written, now)
            changed = len(written)
            rows = conn.execute(sql.RUNNING_UNDER + sql.OF_WORKER, (worker_id,)).fetchall()
            for r in rows:
                self._keyed.discard(r["lease_token"])
                if r["lease_token"] in started:
                    _take_back(conn, r, now, lifecycle.PROCESS_DIED_ERROR)
                else:
                    conn.execute(sql.UNCLAIM + sql.AND_WORKER, (now, r["id"], r["lease_token"], worker_id))
        if rows or inserted or any(c.member for c in succeeded):
            self._notify()
        return changed + len(rows)

    def unclaim(self, leases: Sequence[tuple[str, str]]) -> None:
        if not leases:
            return
        with self._write() as conn:
            now = self.clock()
            for job_id, token in leases:
                self._keyed.discard(token)
                conn.execute(sql.UNCLAIM, (now, job_id, token))
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
        params = (
            now,
            now + delay,
            checkpoint.steps,
            checkpoint.job_state,
            error,
            int(resumption),
            int(resumption),
            job_id,
            token,
        )
        _guarded(self._change(sql.REQUEUE, sql.REQUEUE_TRACKED, params, token), job_id)
        self._notify()

    def fail(
        self,
        job_id: str,
        token: str,
        checkpoint: Checkpoint,
        error: str,
        discard: bool = False,
        *,
        member: bool = False,
    ) -> None:
        state = "discarded" if discard else "failed"
        params = (state, self.clock(), checkpoint.steps, checkpoint.job_state, error, job_id, token)
        _guarded(self._change(sql.FAIL, sql.FAIL_TRACKED, params, token, member), job_id)
        if member:
            self._notify()

    def release(self, job_id: str, token: str) -> None:
        now = self.clock()
        self._keyed.discard(token)
        with self._write() as conn:
            row = conn.execute(sql.RUNNING_UNDER + sql.GUARD, (job_id, token)).fetchone()
            if row is not None:
                _take_back(conn, row, now, lifecycle.STOPPED_ERROR)
        _guarded(int(row is not None), job_id)
        self._notify()

    def reap_expired(self, taken: Callable[[TakenBack], None] | None = None) -> int:
        self.check_file()  # every second or so in each worker: notice a deleted or replaced file
        now = self.clock()
        if self._exec(sql.EXPIRED_PROBE, (now,)).fetchone() is None:
            return 0
        with self._write() as conn:
            rows = conn.execute(sql.EXPIRED, (now,)).fetchall()
            verdicts = [_take_back(conn, r, now, lifecycle.LEASE_EXPIRED_ERROR) for r in rows]
        if rows:
            self._notify()
        if taken is not None:
            for r, verdict in zip(rows, verdicts, strict=True):
                taken(TakenBack(r["id"], r["job_class"], r["worker_id"], verdict))
        return len(rows)

    def advance_waiting(self, seconds: float, queues: Sequence[str] | None) -> int:
        queue_sql, queue_params = sql.queue_filter(queues)
        return self._exec_write(sql.ADVANCE_WAITING + queue_sql, (seconds, self.clock(), *queue_params)).rowcount


def _complete_in(conn: Any, done: Sequence[Completion], now: float, tracked: Sequence[Completion]) -> set[str]:
    """Mark ``done`` succeeded (each guarded by its lease); returns the ids written. ``tracked``
    (those of ``done`` known to have a batch or a limit key) take the tracked statement at once;
    the others the untracked one, then the tracked one if it left some (see ``sql.TRACKED``)."""
    known = {c.id for c in tracked}
    untracked = [c for c in done if c.id not in known] if known else done
    written = _complete_with(conn, untracked, now, False)
    if len(written) < len(untracked):
        tracked = [*tracked, *(c for c in untracked if c.id not in written)]
    return written | _complete_with(conn, tracked, now, True)


def _complete_with(conn: Any, done: Sequence[Completion], now: float, tracked: bool) -> set[str]:
    written: set[str] = set()
    start = 0
    for size in chunk_sizes(len(done), sql.COMPLETE_CHUNK):
        params: list[Any] = [now]
        for c in done[start : start + size]:
            cp = c.checkpoint
            params += (c.id, c.token, c.result, cp.steps, cp.job_state, c.continuation_error)
        written.update(map(_FIRST, conn.execute(sql.complete_many_sql(size, tracked), params)))
        start += size
    return written


def _insert_children(conn: Any, done: Sequence[Completion], written: set[str], now: float) -> bool:
    """Insert the continuations of the successes written; whether there were any."""
    inserted = False
    for c in done:
        if c.children and c.id in written:
            insert_jobs(conn, c.children, now, c.id)
            inserted = True
    return inserted


def _take_back(conn: Any, r: Any, now: float, error: str) -> str:
    """Resume, retry or fail a running job whose execution ended without an outcome (its
    worker died or stopped), as :func:`onward.lifecycle.after_lost_lease` decides; returns
    what became of it (see :class:`~onward.stores.base.TakenBack`)."""
    guard = (r["id"], r["lease_token"])
    decision = lifecycle.after_lost_lease(
        progressed=bool(r["progressed"]),
        attempts=r["attempts"],
        max_attempts=r["max_attempts"],
        resumptions=r["resumptions"],
        max_resumptions=r["max_resumptions"],
        cancel_requested=bool(r["cancel_requested"]),
    )
    if decision.verdict == Verdict.CANCEL:
        conn.execute(sql.REAP_CANCEL, (now, *guard))
        return "cancelled"
    if decision.verdict == Verdict.RESUME:
        conn.execute(sql.REAP_RESUME, (now, *guard))
        return "resumed"
    if decision.verdict == Verdict.RETRY:
        conn.execute(sql.REAP_RETRY, (now, error, *guard))
        return "retried"
    limit = r["max_resumptions"]
    failed = lifecycle.resume_limit_error(limit) if decision.resume_limit else error
    conn.execute(sql.REAP_FAIL, (now, failed, *guard))
    return "failed"


def _guarded(rowcount: int, job_id: str) -> None:
    if rowcount == 0:
        raise LeaseLost(f"job {job_id} is no longer running under this execution's lease")
