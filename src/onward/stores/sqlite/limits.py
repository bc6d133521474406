"""Claiming jobs that have limits, in the SQLite store, under the writer lock.

The claim of jobs without limits is one statement (``sql.CLAIM``). It leaves the jobs with a
limit key alone; when it claimed fewer jobs than asked, :func:`claim_limited` takes the
writer lock and goes through the first ready jobs in claim order: a job without limits is
claimed, a job whose key has room is claimed and counted, and the ready jobs of a key without
room are *held* (``held_until``), which takes them out of the ready indexes. So a held key
costs the claim nothing however many jobs wait behind it. A trigger (migrations 10, 11) gives
a held job back when a job of its key stops running, on every path; a throttled job is
given back when its window frees.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from onward.stores.sqlite import limit_sql, sql

__all__ = ["claim_limited"]

#: Most ready jobs one claim looks at before it returns what it has (keeps the write lock short;
#: holding a key's jobs is one statement however many it holds).
MOST_SEEN = 2000


def claim_limited(
    conn: sqlite3.Connection,
    worker_id: str,
    queues: Sequence[str] | None,
    lease_timeout: float,
    limit: int,
    now: float,
) -> tuple[list[sqlite3.Row], int]:
    """Claim up to ``limit`` ready jobs, limits applied; call inside a write transaction.
    Returns the claimed rows (each ending with the job's limit key) and how many of them have one."""
    if conn.execute(limit_sql.HOLDS_DUE, (now,)).fetchone() is not None:  # a read costs less than an UPDATE
        conn.execute(limit_sql.UNHOLD_DUE, (now,))
    running: dict[str, int] = {}  # running jobs of each key met (counted by the read, then by this claim)
    windows: dict[str, dict[float, list[float]]] = {}  # starts of each throttled key met, by window
    chosen: list[int] = []
    limited = 0
    throttled: list[tuple[str, float]] = []
    seen: set[int] = set()
    while len(chosen) < limit and len(seen) < MOST_SEEN:
        ready_sql, params = sql.ready_rows(queues, now, limit - len(chosen) + len(seen))
        rows = conn.execute(limit_sql.with_limits(ready_sql), params).fetchall()
        fresh = False
        for seq, key, concurrency, throttle_limit, per, count in rows:
            if seq in seen:
                continue
            fresh = True
            seen.add(seq)
            if key is None:
                chosen.append(seq)
                if len(chosen) >= limit:
                    break
                continue
            busy = running.setdefault(key, count)
            starts = _starts(conn, windows, key, per, now) if per is not None else None
            if concurrency is not None and busy >= concurrency:
                conn.execute(limit_sql.HOLD_FOR_SLOT, (limit_sql.HELD_FOR_SLOT, key, now, busy))
            elif starts is not None and throttle_limit is not None and len(starts) >= throttle_limit:
                free_at = starts[len(starts) - throttle_limit] + per
                conn.execute(limit_sql.HOLD_FOR_WINDOW, (free_at, key, now, per, len(starts)))
            else:
                chosen.append(seq)
                limited += 1
                running[key] = busy + 1
                if key in windows:
                    for kept in windows[key].values():
                        kept.append(now)
                if per is not None:
                    throttled.append((key, per))
            if len(chosen) >= limit:
                break
        if not fresh:
            break
    if not chosen:
        return [], 0
    claimed = conn.execute(
        sql.claim_seqs_sql(len(chosen)), (worker_id, lease_timeout, now + lease_timeout, now, *chosen)
    ).fetchall()
    _record_starts(conn, throttled, now)
    return claimed, limited


def _starts(
    conn: sqlite3.Connection, windows: dict[str, dict[float, list[float]]], key: str, per: float, now: float
) -> list[float]:
    """The starts of ``key`` in the window of ``per`` seconds up to ``now``, oldest first."""
    kept = windows.setdefault(key, {})
    found = kept.get(per)
    if found is None:
        found = kept[per] = [r[0] for r in conn.execute(limit_sql.STARTS_WITH_KEY, (key, now - per))]
    return found


def _record_starts(conn: sqlite3.Connection, throttled: list[tuple[str, float]], now: float) -> None:
    """Record each throttled start, and forget the starts no window of their key looks at."""
    pruned: set[str] = set()
    for key, per in throttled:
        conn.execute(limit_sql.RECORD_START, (key, now))
        if key not in pruned:
            pruned.add(key)
            longest = conn.execute(limit_sql.KEEP_WINDOW, (key, per)).fetchone()[0]
            conn.execute(limit_sql.PRUNE_STARTS, (key, now - longest))
