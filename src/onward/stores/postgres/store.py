"""The PostgreSQL store: many workers on many hosts against one database.

Workers claim with ``FOR UPDATE SKIP LOCKED`` off a partial index of ready jobs, several at
a time, in one statement. Every state change is one guarded statement (``WHERE id = %s AND
state = 'running' AND lease_token = %s``); completing a job and inserting its continuations
is one statement too. Leases and schedules are compared with the database's ``now()``, so
worker clocks do not matter. Idle workers sleep until ``NOTIFY`` wakes them
(:mod:`onward.stores.postgres.listen`) and look on their own only as a fallback. See
:mod:`onward.stores.postgres.connection` for connections and reconnecting; the SQL is in
:mod:`onward.stores.postgres.sql`, reading and administration in
:mod:`onward.stores.postgres.admin`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import psycopg
from psycopg import pq

from onward import lifecycle
from onward.errors import LeaseLost, OnwardError
from onward.lifecycle import KeyUse
from onward.stores._common import claimed_from_row
from onward.stores.base import Checkpoint, Claimed, Completion, Inserter, NewBatch, NewJob, Renewal, TakenBack
from onward.stores.postgres import batch_sql, sql
from onward.stores.postgres.admin import PostgresAdmin
from onward.stores.postgres.claiming import PostgresClaiming
from onward.stores.postgres.connection import driver_connection
from onward.stores.postgres.inserts import (
    INSERT_CHUNK,
    completing,
    insert_batches,
    insert_jobs,
    job_params,
    job_rows,
    json_rows,
    key_use,
    lock_keys,
    one_insert,
)
from onward.stores.postgres.schedules import PostgresSchedules

__all__ = ["PostgresStore"]


class PostgresStore(PostgresAdmin, PostgresSchedules, PostgresClaiming):
    """Jobs in a PostgreSQL database; safe for any number of processes and hosts."""

    def __init__(self, url: str, *, pool_size: int | None = None) -> None:
        super().__init__(url, pool_size)

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    # -- enqueueing -----------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob], batches: Sequence[NewBatch] = ()) -> list[str]:
        if not jobs and not batches:
            return []
        if len(jobs) == 1 and not batches and jobs[0].unique_key is None:
            ids = self._run(partial(_insert_one, jobs[0]))  # perform_later: one statement
            self._notified(None)
            return ids
        unique = any(job.unique_key is not None for job in jobs)
        several = len(jobs) > INSERT_CHUNK  # more than one statement: one transaction

        def run(conn: psycopg.Connection[Any], attempt: int) -> list[str]:
            if batches:
                if attempt and conn.execute(batch_sql.BATCH_EXISTS, (batches[0].id,)).fetchone():
                    return _ids_after_commit(conn, jobs) + _members_after_commit(conn, batches)
                with conn.transaction():
                    return insert_jobs(conn, jobs) + insert_batches(conn, batches)
            if attempt and conn.execute("SELECT 1 FROM onward_jobs WHERE id = %s", (jobs[0].id,)).fetchone():
                return _ids_after_commit(conn, jobs)  # the first try committed; its reply was lost
            if not unique and not several:
                return insert_jobs(conn, jobs)
            with conn.transaction():
                return insert_jobs(conn, jobs)

        ids = self._run(run)
        self._notified(None)
        return ids

    def join_transaction(self, connection: Any) -> Inserter:
        conn = driver_connection(connection)

        def insert(jobs: Sequence[NewJob], batches: Sequence[NewBatch] = ()) -> list[str]:
            status = conn.info.transaction_status
            if status == pq.TransactionStatus.INERROR:
                raise OnwardError("onward.transaction(): the connection's transaction has failed; no job was enqueued")
            if status == pq.TransactionStatus.IDLE and conn.autocommit:
                raise OnwardError(
                    "onward.transaction(): no transaction is open on the connection (it is in autocommit mode), so"
                    " the jobs would not depend on anything; open one first (with conn.transaction(): ..., or"
                    " Django's transaction.atomic())"
                )
            return insert_jobs(conn, jobs) + (insert_batches(conn, batches) if batches else [])

        return insert

    def start_now(self, job: NewJob, worker_id: str, lease_timeout: float) -> Claimed:
        def run(conn: psycopg.Connection[Any], attempt: int) -> Claimed:
            with conn.transaction():
                lock_keys(conn, [job.unique_key])
                use, latest = key_use(conn, job, now=True)
                if use == KeyUse.NEW:
                    conn.execute(sql.INSERT_NOW, job_params(job))
                    job_id = job.id
                else:
                    assert latest is not None
                    job_id = latest
                    if use == KeyUse.RERUN:
                        conn.execute(sql.RESET_ATTEMPTS, (job_id,))
                row = conn.execute(sql.START_NOW, (worker_id, lease_timeout, lease_timeout, job_id)).fetchone()
            assert row is not None
            return claimed_from_row(row)

        return self._run(run)

    # -- running --------------------------------------------------------------------------
    def heartbeat(self, leases: Sequence[tuple[str, str]], lease_timeout: float) -> set[str]:
        return self.renew(leases, lease_timeout).lost

    def renew(self, leases: Sequence[tuple[str, str]], lease_timeout: float) -> Renewal:
        if not leases:
            return Renewal(set(), set())
        ids = [job_id for job_id, _ in leases]
        tokens = [token for _, token in leases]

        def run(conn: psycopg.Connection[Any], attempt: int) -> list[Any]:
            return conn.execute(sql.HEARTBEAT, (json_rows(ids, tokens), lease_timeout)).fetchall()

        rows = self._run(run)
        return Renewal(set(ids) - {r[0] for r in rows}, {r[0] for r in rows if r[1]})

    def cancel_running(self, job_id: str, token: str, checkpoint: Checkpoint, error: str | None = None) -> None:
        self._guarded(sql.CANCEL_RUNNING, (checkpoint.steps, checkpoint.job_state, error, job_id, token), job_id)

    def save_checkpoint(self, job_id: str, token: str, checkpoint: Checkpoint, resumption: bool = False) -> None:
        params = (checkpoint.steps, checkpoint.job_state, checkpoint.progressed, int(resumption), job_id, token)
        self._guarded(sql.SAVE_CHECKPOINT, params, job_id)

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
        params = (result, checkpoint.steps, checkpoint.job_state, continuation_error, job_id, token)
        if not children and not batches:
            self._guarded(sql.COMPLETE, params, job_id)
            if member:
                self._notified(None)
            self._slot_freed(job_id)
            return []

        def run(conn: psycopg.Connection[Any], attempt: int) -> list[str] | None:
            if batches:
                with conn.transaction():
                    row = conn.execute(sql.COMPLETE, params).fetchone()
                    if row is None:
                        return None
                    return insert_jobs(conn, children, job_id, row[0]) + insert_batches(conn, batches, row[0])
            if any(c.unique_key is not None for c in children):
                with conn.transaction():
                    row = conn.execute(sql.COMPLETE, params).fetchone()
                    if row is None:
                        return None
                    return insert_jobs(conn, children, job_id, row[0])
            done = conn.execute(sql.COMPLETE_WITH_CHILDREN, (*params, job_id, job_rows(children))).fetchone()
            return [c.id for c in children] if done and done[0] else None

        ids = self._run(run)
        if ids is None:
            raise _lease_lost(job_id)
        self._slots.discard(job_id)
        self._notified(None)
        return ids

    def commit_continuations(
        self, job_id: str, children: Sequence[NewJob], error: str | None, batches: Sequence[NewBatch] = ()
    ) -> list[str] | None:
        def run(conn: psycopg.Connection[Any], attempt: int) -> list[str] | None:
            with conn.transaction():
                if conn.execute(sql.SET_CONTINUATION_ERROR, (error, job_id)).rowcount == 0:
                    return None
                if error is not None:
                    return []
                ids = insert_jobs(conn, children, job_id) if children else []
                return ids + (insert_batches(conn, batches) if batches else [])

        ids = self._run(run)
        if ids:
            self._notified(None)
        return ids

    def complete_many(self, done: Sequence[Completion]) -> set[str]:
        """Mark many jobs succeeded in one statement, inserting the continuations of those
        written, so a busy worker's successes share one commit; returns the ids whose lease
        was lost (those are left as they are, as ``complete`` would)."""
        if not done:
            return set()
        statement, params = completing(done)

        def run(conn: psycopg.Connection[Any], attempt: int) -> set[str]:
            return {r[0] for r in conn.execute(statement, params).fetchall()}

        written = self._run(run)
        if len(params) > 1 or any(c.member for c in done):  # continuations or callbacks were inserted
            self._notified(None)
        if self._slots:
            for c in done:
                self._slot_freed(c.id)
        return {c.id for c in done} - written

    def _slot_freed(self, job_id: str) -> None:
        if job_id in self._slots:
            self._slots.discard(job_id)
            self._notified(None)

    def take_over(self, worker_id: str, ran: Sequence[tuple[str, str]], succeeded: Sequence[Completion]) -> int:
        started = (worker_id, [token for _, token in ran], lifecycle.PROCESS_DIED_ERROR)

        finishing = completing(succeeded) if succeeded else None

        def run(conn: psycopg.Connection[Any], attempt: int) -> int:
            with conn.transaction():
                changed = len(conn.execute(*finishing).fetchall()) if finishing else 0
                took = conn.execute(sql.TAKE_OVER_RAN, started).fetchone()
                unclaimed = conn.execute(sql.UNCLAIM_WORKER, (worker_id,)).fetchone()
            return changed + (int(took[0]) if took else 0) + (int(unclaimed[0]) if unclaimed else 0)

        changed = self._run(run)
        if changed:
            self._notified(None)
        return changed

    def unclaim(self, leases: Sequence[tuple[str, str]]) -> None:
        """Give back jobs claimed but never started (a stopping worker's prefetched jobs), as
        if they had not been claimed: no attempt is used."""
        if not leases:
            return
        ids, tokens = [i for i, _ in leases], [t for _, t in leases]
        rows = json_rows(ids, tokens)
        self._run(lambda conn, attempt: conn.execute(sql.UNCLAIM, (rows,)))
        self._slots.difference_update(ids)
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
        self._guarded(sql.REQUEUE, params, job_id)
        self._slots.discard(job_id)
        self._notified(None)

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
        self._guarded(sql.FAIL, (state, checkpoint.steps, checkpoint.job_state, error, job_id, token), job_id)
        if member:
            self._notified(None)
        self._slot_freed(job_id)

    def release(self, job_id: str, token: str) -> None:
        def run(conn: psycopg.Connection[Any], attempt: int) -> int:
            row = conn.execute(sql.RELEASE, (job_id, token, lifecycle.STOPPED_ERROR)).fetchone()
            return int(row[0]) if row else 0

        if self._run(run) == 0:
            raise _lease_lost(job_id)
        self._slots.discard(job_id)
        self._notified(None)

    def _guarded(self, statement: str, params: Sequence[Any], job_id: str) -> None:
        def run(conn: psycopg.Connection[Any], attempt: int) -> int:
            return conn.execute(statement, params).rowcount

        if self._run(run) == 0:
            raise _lease_lost(job_id)

    def reap_expired(self, taken: Callable[[TakenBack], None] | None = None) -> int:
        def run(conn: psycopg.Connection[Any], attempt: int) -> list[Any]:
            return conn.execute(sql.REAP, (lifecycle.LEASE_EXPIRED_ERROR,)).fetchall()

        rows = self._run(run, persist=False)
        if rows:  # back in the queue, or a slot of its limit key given back
            self._notified(None)
        if taken is not None:
            for job_id, job_class, worker_id, verdict, _ in rows:
                taken(TakenBack(job_id, job_class, worker_id, _VERDICTS[verdict]))
        return len(rows)


# What the reaping statement's verdicts mean (see ``TakenBack``).
_VERDICTS = {"resume": "resumed", "retry": "retried", "lost": "failed", "limit": "failed", "cancel": "cancelled"}


def _lease_lost(job_id: str) -> LeaseLost:
    return LeaseLost(f"job {job_id} is no longer running under this execution's lease")


def _members_after_commit(conn: psycopg.Connection[Any], batches: Sequence[NewBatch]) -> list[str]:
    """The members' ids an ``enqueue`` of ``batches`` returned, after its reply was lost."""
    return [r[0] for b in batches for r in conn.execute(batch_sql.BATCH_MEMBERS, (b.id,)).fetchall()]


def _insert_one(job: NewJob, conn: psycopg.Connection[Any], attempt: int) -> list[str]:
    """``perform_later``'s job, one statement committing on its own (after a lost reply, the
    job the first try committed is found and not inserted again)."""
    if attempt and conn.execute("SELECT 1 FROM onward_jobs WHERE id = %s", (job.id,)).fetchone():
        return [job.id]
    conn.execute(*one_insert(job))
    return [job.id]


def _ids_after_commit(conn: psycopg.Connection[Any], jobs: Sequence[NewJob]) -> list[str]:
    """The ids an ``enqueue`` returned, recovered after its commit's reply was lost."""
    ids = []
    for job in jobs:
        if conn.execute("SELECT 1 FROM onward_jobs WHERE id = %s", (job.id,)).fetchone() or job.unique_key is None:
            ids.append(job.id)
        else:
            latest = conn.execute(sql.LATEST_WITH_KEY, (job.unique_key,)).fetchone()
            ids.append(latest[0] if latest else job.id)
    return ids
