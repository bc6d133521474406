"""Claiming jobs that have limits, in the PostgreSQL store, in one transaction.

The claim statement (``sql.claim_sql``) claims jobs without limits and says whether jobs
with a limit key were among the first ready ones (or held ones are due again); then
:func:`claim_limited` goes through the first ready jobs in claim order. For each limit key
it takes an advisory lock exclusively, *trying* (a claim never waits: when another claim
decides about the key, it is skipped this time), counts the key's running jobs and recent
starts, and claims the job or *holds* the key's ready jobs (``held_until``), which takes
them out of the ready indexes: a held key costs the claim nothing however many jobs wait.
The trigger that gives a slot back (migration 9) takes the same lock shared, so it sees
every hold a claim committed; the clock is the database's at the claim (``clock_timestamp()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from onward.stores.postgres import limit_sql

__all__ = ["claim_limited"]

#: Most candidate rows one claim looks at before it returns what it has.
MOST_SEEN = 2000


@dataclass
class _Key:
    running: int
    room: int = 0  # slots left after this claim, as the last claimed job's class counts them
    starts: dict[float, list[float]] = field(default_factory=dict)  # throttle window -> starts in it


def claim_limited(
    conn: psycopg.Connection[Any], worker_id: str, queues: Sequence[str] | None, lease_timeout: float, limit: int
) -> tuple[list[Any], bool]:
    """Claim up to ``limit`` ready jobs, limits applied; call inside a transaction. Also
    returns whether a key was passed over because another claim was deciding about it (its
    jobs may be ready: look again soon)."""
    row = conn.execute(limit_sql.LIMIT_NOW).fetchone()
    assert row is not None
    now = float(row[0])
    kind, queue_params = _kind(queues)
    keys: dict[str, _Key | None] = {}  # None: another claim is deciding about the key
    chosen: list[int] = []
    throttled: list[tuple[str, float]] = []
    seen: set[int] = set()
    while len(chosen) < limit and len(seen) < MOST_SEEN:
        wanted = limit - len(chosen) + len(seen)
        busy = [key for key, state in keys.items() if state is None]
        rows = conn.execute(limit_sql.LIMIT_CANDIDATES[kind], (now, *queue_params, busy, wanted)).fetchall()
        rows = [r for r in rows if r[0] not in seen]
        if not rows:
            break
        _lock_keys(conn, keys, {r[1] for r in rows if r[1] is not None and r[1] not in keys})
        for seq, key, concurrency, throttle_limit, per in rows:
            seen.add(seq)
            if key is None:
                chosen.append(seq)
            else:
                state = keys[key]
                if state is not None and _room(conn, state, key, concurrency, throttle_limit, per, now):
                    chosen.append(seq)
                    if per is not None:
                        throttled.append((key, per))
            if len(chosen) >= limit:
                break
    passed_over = any(state is None for state in keys.values())
    if not chosen:
        return [], passed_over
    claimed = conn.execute(limit_sql.CLAIM_SEQS, (worker_id, lease_timeout, now, lease_timeout, now, chosen)).fetchall()
    _record_starts(conn, throttled, now)
    rooms = [(key, state.room) for key, state in keys.items() if state is not None and state.room > 0]
    if rooms:  # jobs held for a slot that is free again (e.g. a larger concurrency)
        conn.execute(limit_sql.UNHOLD_FOR_SLOT, ([key for key, _ in rooms], [room for _, room in rooms]))
    return sorted(claimed, key=lambda r: (r[3], r[-2], r[-1])), passed_over


def _kind(queues: Sequence[str] | None) -> tuple[str, tuple[Any, ...]]:
    if not queues:
        return "any", ()
    if len(queues) == 1:
        return "one", (queues[0],)
    return "many", (list(queues),)


def _lock_keys(conn: psycopg.Connection[Any], keys: dict[str, _Key | None], new: set[str]) -> None:
    """Lock the ``new`` keys and count their running jobs (``None``: another claim holds the lock)."""
    if not new:
        return
    locked = [r[0] for r in conn.execute(limit_sql.TRY_LOCK_KEYS, (sorted(new),))]
    running = dict(conn.execute(limit_sql.RUNNING_WITH_KEYS, (locked,)).fetchall()) if locked else {}
    for key in new:
        keys[key] = _Key(int(running.get(key, 0))) if key in locked else None


def _room(
    conn: psycopg.Connection[Any],
    state: _Key,
    key: str,
    concurrency: int | None,
    throttle_limit: int | None,
    per: float | None,
    now: float,
) -> bool:
    """Whether a job with these numbers may start now; when not, hold the key's ready jobs."""
    starts: list[float] = []
    if per is not None:
        found = state.starts.get(per)
        if found is None:
            found = state.starts[per] = [r[0] for r in conn.execute(limit_sql.STARTS_WITH_KEY, (key, now - per))]
        starts = found
    if concurrency is not None and state.running >= concurrency:
        conn.execute(limit_sql.HOLD_FOR_SLOT, (key, now, state.running))
        return False
    if throttle_limit is not None and per is not None and len(starts) >= throttle_limit:
        free_at = starts[len(starts) - throttle_limit] + per
        conn.execute(limit_sql.HOLD_FOR_WINDOW, (free_at, key, now, per, len(starts)))
        return False
    state.running += 1
    if concurrency is not None:
        state.room = concurrency - state.running
    for kept in state.starts.values():
        kept.append(now)
    return True


def _record_starts(conn: psycopg.Connection[Any], throttled: list[tuple[str, float]], now: float) -> None:
    """Record each throttled start, and forget the starts no window of their key looks at."""
    if not throttled:
        return
    conn.execute(limit_sql.RECORD_STARTS, ([key for key, _ in throttled], now))
    longest: dict[str, float] = {}
    for key, per in throttled:
        longest[key] = max(per, longest.get(key, 0.0))
    for key in sorted(longest):
        row = conn.execute(limit_sql.KEEP_WINDOW, (key, longest[key])).fetchone()
        conn.execute(limit_sql.PRUNE_STARTS, (key, now - float(row[0]) if row else now))
