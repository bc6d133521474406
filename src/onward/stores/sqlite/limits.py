"""Claiming jobs that have limits, in the SQLite store, under the writer lock.

The claim of jobs without limits is one statement (``sql.CLAIM``). It leaves the jobs with a
limit key alone; when it claimed fewer jobs than asked, :func:`claim_limited` takes the
writer lock and goes through the first ready jobs in claim order: a job without limits is
claimed, a job whose key has room is claimed and counted, and the ready jobs of a key without
room are *held* (``held_until``), which takes them out of the ready indexes. So a held key
costs the claim nothing however many jobs wait behind it. A trigger (migration 7) gives
a held job back when a job of its key stops running, on every path; a throttled job is
given back when its window frees.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from onward.stores.sqlite import sql

__all__ = ["claim_limited"]

#: Most ready jobs one claim looks at before it returns what it has (keeps the write lock short;
#: holding a key's jobs is one statement however many it holds).
MOST_SEEN = 2000


@dataclass
class _Key:
    running: int
    starts: dict[float, list[float]] = field(default_factory=dict)  # throttle window -> starts in it


def claim_limited(
    conn: sqlite3.Connection,
    worker_id: str,
    queues: Sequence[str] | None,
    lease_timeout: float,
    limit: int,
    now: float,
) -> list[sqlite3.Row]:
    """Claim up to ``limit`` ready jobs, limits applied; call inside a write transaction."""
    conn.execute(sql.UNHOLD_DUE, (now,))
    keys: dict[str, _Key] = {}
    chosen: list[int] = []
    throttled: list[tuple[str, float]] = []
    seen: set[int] = set()
    while len(chosen) < limit and len(seen) < MOST_SEEN:
        ready_sql, params = sql.ready_rows(queues, now, limit - len(chosen) + len(seen))
        rows = [r for r in conn.execute(ready_sql, params).fetchall() if r["seq"] not in seen]
        if not rows:
            break
        for row in rows:
            seq = row["seq"]
            seen.add(seq)
            if row["limit_key"] is None:
                chosen.append(seq)
                if len(chosen) >= limit:
                    break
                continue
            key, concurrency, throttle_limit, per = conn.execute(sql.READY_LIMITS, (seq,)).fetchone()
            state = keys.get(key)
            if state is None:
                state = keys[key] = _Key(conn.execute(sql.RUNNING_WITH_KEY, (key,)).fetchone()[0])
            starts = _starts(conn, state, key, per, now) if per is not None else []
            if concurrency is not None and state.running >= concurrency:
                conn.execute(sql.HOLD_FOR_SLOT, (sql.HELD_FOR_SLOT, key, now, state.running))
            elif throttle_limit is not None and per is not None and len(starts) >= throttle_limit:
                free_at = starts[len(starts) - throttle_limit] + per
                conn.execute(sql.HOLD_FOR_WINDOW, (free_at, key, now, per, len(starts)))
            else:
                chosen.append(seq)
                state.running += 1
                for kept in state.starts.values():
                    kept.append(now)
                if per is not None:
                    throttled.append((key, per))
            if len(chosen) >= limit:
                break
    if not chosen:
        return []
    claimed = conn.execute(
        sql.claim_seqs_sql(len(chosen)), (worker_id, lease_timeout, now + lease_timeout, now, *chosen)
    ).fetchall()
    _record_starts(conn, throttled, now)
    return claimed


def _starts(conn: sqlite3.Connection, state: _Key, key: str, per: float, now: float) -> list[float]:
    """The starts of ``key`` in the window of ``per`` seconds up to ``now``, oldest first."""
    found = state.starts.get(per)
    if found is None:
        found = state.starts[per] = [r[0] for r in conn.execute(sql.STARTS_WITH_KEY, (key, now - per))]
    return found


def _record_starts(conn: sqlite3.Connection, throttled: list[tuple[str, float]], now: float) -> None:
    """Record each throttled start, and forget the starts no window of their key looks at."""
    pruned: set[str] = set()
    for key, per in throttled:
        conn.execute(sql.RECORD_START, (key, now))
        if key not in pruned:
            pruned.add(key)
            longest = conn.execute(sql.KEEP_WINDOW, (key, per)).fetchone()[0]
            conn.execute(sql.PRUNE_STARTS, (key, now - longest))
