"""Claiming on the PostgreSQL store, and an idle worker's wait for jobs.

A worker that found nothing does not ask the database again until a notification arrives,
the next scheduled job is due, or ``FALLBACK_POLL`` seconds passed. While its queues hold jobs
with limits it claims through the function that applies them (:mod:`.limits`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg

from onward.stores._common import claimed_from_row
from onward.stores.base import Claimed
from onward.stores.postgres import sql
from onward.stores.postgres.connection import PostgresConnections
from onward.stores.postgres.limits import claim_limited

__all__ = ["FALLBACK_POLL", "PostgresClaiming"]

#: Longest an idle worker goes without looking for jobs when no notification came.
FALLBACK_POLL = 1.0


class PostgresClaiming(PostgresConnections):
    """(A part of :class:`onward.stores.postgres.store.PostgresStore`.) Claiming and waiting."""

    def __init__(self, url: str, pool_size: int | None = None) -> None:
        super().__init__(url, pool_size)
        self._idle: dict[tuple[str, tuple[str, ...] | None], tuple[int, float]] = {}
        # Jobs claimed with their limits applied: when one stops running, its key's slot is given
        # back (by the trigger, in that transaction), so this process looks for ready jobs again.
        self._slots: set[str] = set()
        # Workers (with their queues) whose last claim met jobs with limits: their next claim is
        # one call of the function that applies limits (it claims jobs without limits too).
        self._limited: set[tuple[str, tuple[str, ...] | None]] = set()

    # -- waiting --------------------------------------------------------------------------
    def next_ready_in(self, queues: Sequence[str] | None) -> float | None:
        def run(conn: psycopg.Connection[Any], attempt: int) -> Any:
            if queues:
                return conn.execute(sql.NEXT_DUE_QUEUES, (list(queues),)).fetchone()
            return conn.execute(sql.NEXT_DUE_ANY).fetchone()

        row = self._run(run, persist=False)
        return None if row is None or row[0] is None else float(row[0])

    def advance_waiting(self, seconds: float, queues: Sequence[str] | None) -> int:
        def run(conn: psycopg.Connection[Any], attempt: int) -> int:
            if queues:
                return conn.execute(sql.ADVANCE_WAITING + " AND queue = ANY(%s)", (seconds, list(queues))).rowcount
            return conn.execute(sql.ADVANCE_WAITING, (seconds,)).rowcount

        return self._run(run)

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

        if key in self._limited:
            rows = self._claim_limited(worker_id, queues, lease_timeout, limit)
            if len(rows) < limit:  # the queues may have run out of jobs with limits: the claim statement says
                self._limited.discard(key)
                self._notified(None)  # (a key another claim was deciding about may have room: look again)
            elif not any(r[-3] for r in rows):  # none had limits: the claim statement takes such jobs
                self._limited.discard(key)
            if rows:
                self._idle.pop(key, None)
                return [claimed_from_row(r) for r in rows]
        lease = (worker_id, lease_timeout, lease_timeout)
        params: tuple[Any, ...]
        if not queues:
            statement, params = sql.claim_sql("any", limit), lease
        elif len(queues) == 1:
            statement, params = sql.claim_sql("one", limit), (queues[0], *lease, queues[0], queues[0])
        else:
            many = list(queues)
            statement, params = sql.claim_sql("many", limit), (many, *lease, many, many)

        def run(conn: psycopg.Connection[Any], attempt: int) -> list[Any]:
            return conn.execute(statement, params).fetchall()

        found = self._run(run, persist=False)
        due, limited = (found[0][-2], found[0][-1]) if found else (None, False)
        rows = found if found and found[0][0] is not None else []
        if limited and len(rows) < limit:
            rows += self._claim_limited(worker_id, queues, lease_timeout, limit - len(rows))
            if len(rows) < limit:  # (a key another claim was deciding about may have room): look again
                self._notified(None)
            else:
                self._limited.add(key)
        if rows or limited:  # (a key another claim was deciding about may have room: look again)
            self._idle.pop(key, None)
            return [claimed_from_row(r) for r in rows]
        wait = FALLBACK_POLL
        if due is not None:
            wait = max(0.0, min(wait, float(due)))
        if len(self._idle) > 1000:
            self._idle.clear()
        self._idle[key] = (generation, time.monotonic() + wait)
        return []

    def wait_for_jobs(self, queues: Sequence[str] | None, timeout: float, wake: threading.Event) -> None:
        """Sleep until a notification for ``queues`` arrives, ``timeout`` passes, or the
        claim that found nothing looks again on its own (a scheduled job comes due)."""
        served = tuple(queues) if queues else None
        now = time.monotonic()
        for (_, idle_queues), (_, until) in list(self._idle.items()):
            if idle_queues == served:
                timeout = min(timeout, max(0.0, until - now))
        super().wait_for_jobs(queues, timeout, wake)

    def _claim_limited(
        self, worker_id: str, queues: Sequence[str] | None, lease_timeout: float, limit: int
    ) -> list[Any]:
        def run(conn: psycopg.Connection[Any], attempt: int) -> list[Any]:
            return claim_limited(conn, worker_id, queues, lease_timeout, limit)

        rows = self._run(run, persist=False)
        self._slots.update(r[0] for r in rows if r[-3])  # (the jobs with a limit key)
        return rows
