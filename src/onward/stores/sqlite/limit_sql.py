"""SQL of concurrency and rate limits on the SQLite store (see ``limits.py`` beside it)."""

from __future__ import annotations

from functools import lru_cache

#: ``held_until`` of a job held while its key's concurrency is full (the trigger of migration 11
#: makes the first of them ready again when a job of the key stops running).
HELD_FOR_SLOT = 1e300
UNHOLD_DUE = "UPDATE onward_jobs SET held_until = NULL WHERE state = 'enqueued' AND held_until <= ?"
HOLDS_DUE = "SELECT 1 FROM onward_jobs INDEXED BY onward_jobs_held_until WHERE state = 'enqueued' AND held_until <= ?"
RUNNING_WITH_KEY = "SELECT count(*) FROM onward_jobs WHERE state = 'running' AND limit_key = ?"


@lru_cache(maxsize=64)
def with_limits(ready: str) -> str:
    """The rows of ``ready`` (``sql.ready_rows``) with their limits, in claim order: seq, limit
    key, concurrency, throttle limit and window, and the running jobs of the key (the ready rows
    first, then each row by its seq; the count read off the index of running jobs with a key)."""
    return (
        "SELECT j.seq, j.limit_key, j.limit_concurrency, j.throttle_limit, j.throttle_per,"
        " CASE WHEN r.limit_key IS NULL THEN 0 ELSE (SELECT count(*) FROM onward_jobs AS k"
        " INDEXED BY onward_jobs_limit_running WHERE k.state = 'running' AND k.limit_key = r.limit_key) END"
        f" FROM ({ready}) AS r CROSS JOIN onward_jobs AS j ON j.seq = r.seq ORDER BY r.priority, r.scheduled_at, r.seq"
    )


STARTS_WITH_KEY = (
    "SELECT started_at FROM onward_limit_starts WHERE limit_key = ? AND started_at > ? ORDER BY started_at"
)
# Every ready job of the key that the same numbers hold back (so the claim sees none of them again).
HOLD_FOR_SLOT = (
    "UPDATE onward_jobs SET held_until = ? WHERE limit_key = ? AND state = 'enqueued' AND held_until IS NULL"
    " AND scheduled_at <= ? AND limit_concurrency <= ?"
)
HOLD_FOR_WINDOW = (
    "UPDATE onward_jobs SET held_until = ? WHERE limit_key = ? AND state = 'enqueued' AND held_until IS NULL"
    " AND scheduled_at <= ? AND throttle_per = ? AND throttle_limit <= ?"
)
RECORD_START = "INSERT INTO onward_limit_starts (limit_key, started_at) VALUES (?, ?)"
KEEP_WINDOW = (
    "INSERT INTO onward_limit_windows (limit_key, longest) VALUES (?, ?)"
    " ON CONFLICT (limit_key) DO UPDATE SET longest = max(longest, excluded.longest) RETURNING longest"
)
PRUNE_STARTS = "DELETE FROM onward_limit_starts WHERE limit_key = ? AND started_at <= ?"
LIMIT_STATE = (
    "SELECT limit_key, limit_concurrency, throttle_limit, throttle_per, held_until FROM onward_jobs WHERE id = ?"
)
HELD_BY_KEY = (
    "SELECT limit_key, count(*) FROM onward_jobs INDEXED BY onward_jobs_held"
    " WHERE state = 'enqueued' AND held_until IS NOT NULL GROUP BY limit_key"
)
RUNNING_BY_KEY = (
    "SELECT limit_key, count(*) FROM onward_jobs INDEXED BY onward_jobs_limit_running"
    " WHERE state = 'running' AND limit_key IS NOT NULL GROUP BY limit_key"
)
