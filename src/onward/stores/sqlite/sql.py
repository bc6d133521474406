"""The SQL of the SQLite store. Statements are constant strings (or built from constants and
counts); values always travel as parameters."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from onward.stores._common import CLAIMED_COLUMNS

GUARD = " WHERE id = ? AND state = 'running' AND lease_token = ?"

INSERT = (
    "INSERT INTO onward_jobs (id, job_class, queue, priority, args, kwargs, state, max_attempts,"
    " max_resumptions, scheduled_at, enqueued_at, unique_key, parent_id, trace_context, schedule_key, scheduled_for,"
    " limit_key, limit_concurrency, throttle_limit, throttle_per)"
    " VALUES (?, ?, ?, ?, ?, ?, 'enqueued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

LATEST_WITH_KEY = "SELECT id, state FROM onward_jobs WHERE unique_key = ? ORDER BY seq DESC LIMIT 1"
LIVE_WITH_KEY = "SELECT 1 FROM onward_jobs WHERE unique_key = ? AND state IN ('enqueued', 'running') LIMIT 1"

# A failed job run again by its unique key or by an operator: attempts start from zero,
# progress and resumptions are kept.
RERUN = (
    "UPDATE onward_jobs SET state = 'enqueued', attempts = 0, resume_pending = 0, scheduled_at = ?,"
    " finished_at = NULL WHERE id = ? AND state = 'failed'"
)
# An operator's retry: the same, from any state that allows it (see ``lifecycle.ACTIONS``).
RETRY_JOB = (
    "UPDATE onward_jobs SET state = 'enqueued', attempts = 0, resume_pending = 0, scheduled_at = ?,"
    " finished_at = NULL, held_until = NULL WHERE id = ? AND state IN ({states})"
)
RESET_ATTEMPTS = "UPDATE onward_jobs SET attempts = 0, resume_pending = 0 WHERE id = ?"

_TAKE = (
    "UPDATE onward_jobs SET state = 'running', lease_token = lower(hex(randomblob(8))), worker_id = ?,"
    " lease_timeout = ?, lease_expires_at = ?, started_at = ?,"
)
START_NOW = _TAKE + (
    " finished_at = NULL, attempts = attempts + 1 - resume_pending, progressed = 0"
    f" WHERE id = ? RETURNING {CLAIMED_COLUMNS}"
)
# Jobs without limits, among the first ready ones (a job with a limit key is left to
# ``limits.claim_limited``, which runs only when this claimed fewer than asked).
CLAIM = _TAKE + (
    " attempts = attempts + 1 - resume_pending, progressed = 0 WHERE seq IN ({ready}) AND limit_key IS NULL"
    " RETURNING " + CLAIMED_COLUMNS
)


@lru_cache(maxsize=64)
def claim_seqs_sql(rows: int) -> str:
    """Claim the ready jobs whose ``seq`` is given (checked against their limits first)."""
    marks = ", ".join("?" * rows)
    return _TAKE + (
        " attempts = attempts + 1 - resume_pending, progressed = 0, held_until = NULL"
        f" WHERE seq IN ({marks}) AND state = 'enqueued' RETURNING {CLAIMED_COLUMNS}"
    )


HEARTBEAT = "UPDATE onward_jobs SET lease_expires_at = ?" + GUARD

SAVE_CHECKPOINT = (
    "UPDATE onward_jobs SET steps = ?, job_state = ?, progressed = progressed | ?,"
    " resumptions = resumptions + ?" + GUARD
)

COMPLETE = (
    "UPDATE onward_jobs SET state = 'succeeded', finished_at = ?, result = ?, steps = ?, job_state = ?,"
    " continuation_error = ?, lease_token = NULL, lease_expires_at = NULL" + GUARD
)

# A re-run of the continuations of a succeeded job whose block had raised.
SET_CONTINUATION_ERROR = (
    "UPDATE onward_jobs SET continuation_error = ?"
    " WHERE id = ? AND state = 'succeeded' AND continuation_error IS NOT NULL"
)

#: Rows per ``complete_many`` statement at most: 6 parameters each, far below SQLite's limit.
COMPLETE_CHUNK = 512


@lru_cache(maxsize=16)
def complete_many_sql(rows: int) -> str:
    """One UPDATE for ``rows`` successes, each row guarded by its id, state and lease token."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)
    return (
        "UPDATE onward_jobs SET state = 'succeeded', finished_at = ?, result = d.column3, steps = d.column4,"
        " job_state = d.column5, continuation_error = d.column6, lease_token = NULL, lease_expires_at = NULL"
        f" FROM (VALUES {values}) AS d"
        " WHERE onward_jobs.id = d.column1 AND onward_jobs.state = 'running' AND onward_jobs.lease_token = d.column2"
        " RETURNING onward_jobs.id"
    )


UNCLAIM = (
    "UPDATE onward_jobs SET state = 'enqueued', attempts = attempts - 1 + resume_pending,"
    " lease_token = NULL, lease_expires_at = NULL, worker_id = NULL" + GUARD
)

REQUEUE = (
    "UPDATE onward_jobs SET state = 'enqueued', scheduled_at = ?, steps = ?, job_state = ?,"
    " error = COALESCE(?, error), resumptions = resumptions + ?, resume_pending = ?,"
    " lease_token = NULL, lease_expires_at = NULL" + GUARD
)

FAIL = (
    "UPDATE onward_jobs SET state = ?, finished_at = ?, steps = ?, job_state = ?, error = ?,"
    " lease_token = NULL, lease_expires_at = NULL" + GUARD
)

RELEASE = (
    "UPDATE onward_jobs SET state = 'enqueued', scheduled_at = ?, resume_pending = progressed,"
    " resumptions = resumptions + progressed, lease_token = NULL, lease_expires_at = NULL" + GUARD
)

# Jobs whose worker died: found through the lease index, then each decided by the lifecycle.
EXPIRED_PROBE = "SELECT 1 FROM onward_jobs WHERE state = 'running' AND lease_expires_at < ? LIMIT 1"
EXPIRED = (
    "SELECT id, lease_token, attempts, max_attempts, resumptions, max_resumptions, progressed"
    " FROM onward_jobs WHERE state = 'running' AND lease_expires_at < ?"
)
REAP_RESUME = (
    "UPDATE onward_jobs SET state = 'enqueued', scheduled_at = ?, resume_pending = 1,"
    " resumptions = resumptions + 1, lease_token = NULL, lease_expires_at = NULL" + GUARD
)
REAP_RETRY = (
    "UPDATE onward_jobs SET state = 'enqueued', scheduled_at = ?, resume_pending = 0,"
    " error = ?, lease_token = NULL, lease_expires_at = NULL" + GUARD
)
REAP_FAIL = (
    "UPDATE onward_jobs SET state = 'failed', finished_at = ?, error = ?,"
    " lease_token = NULL, lease_expires_at = NULL" + GUARD
)

ADVANCE_WAITING = "UPDATE onward_jobs SET scheduled_at = scheduled_at - ? WHERE state = 'enqueued' AND scheduled_at > ?"

_READY = (
    "SELECT seq, priority, scheduled_at, limit_key FROM onward_jobs INDEXED BY {index} WHERE state = 'enqueued'"
    " AND held_until IS NULL AND scheduled_at <= ?{queue} ORDER BY priority, scheduled_at, seq LIMIT ?"
)


def ready_seqs(queues: Sequence[str] | None, now: float, limit: int) -> tuple[str, tuple[Any, ...]]:
    """The ``seq`` of the next ``limit`` ready jobs, read straight off a ready index.

    The indexes are named so that the cost stays the same with a backlog of millions (left
    to itself, the planner may pick another index and sort every enqueued row). With several
    queues, each queue's index yields its first ``limit`` rows and those are merged.
    """
    sql, params = ready_rows(queues, now, limit)
    return f"SELECT seq FROM ({sql})", params


def ready_rows(queues: Sequence[str] | None, now: float, limit: int) -> tuple[str, tuple[Any, ...]]:
    """The next ``limit`` ready jobs as (seq, priority, scheduled_at, limit_key) rows, in
    claim order (held jobs are not in the ready indexes)."""
    if not queues:
        return _READY.format(index="onward_jobs_ready", queue=""), (now, limit)
    one = _READY.format(index="onward_jobs_ready_queue", queue=" AND queue = ?")
    if len(queues) == 1:
        return one, (now, queues[0], limit)
    union = " UNION ALL ".join(f"SELECT * FROM ({one})" for _ in queues)
    params: list[Any] = []
    for name in queues:
        params += [now, name, limit]
    return f"SELECT * FROM ({union}) ORDER BY priority, scheduled_at, seq LIMIT ?", (*params, limit)


# When the next job is due: the first scheduled one not held, or the first throttled one's window.
NEXT_DUE = (
    "SELECT min(due) FROM (SELECT min(scheduled_at) AS due FROM onward_jobs WHERE state = 'enqueued'"
    " AND held_until IS NULL{queue} UNION ALL SELECT min(held_until) FROM onward_jobs"
    " WHERE state = 'enqueued' AND held_until < 1e300{queue})"
)


def queue_filter(queues: Sequence[str] | None) -> tuple[str, tuple[str, ...]]:
    """`` AND queue IN (?, ...)`` for ``queues`` (nothing for all queues)."""
    if not queues:
        return "", ()
    return f" AND queue IN ({', '.join('?' * len(queues))})", tuple(queues)


# -- reading and administration ------------------------------------------------------------
SELECT_JOB = "SELECT * FROM onward_jobs WHERE id = ?"
CHILDREN = "SELECT id FROM onward_jobs WHERE parent_id = ? ORDER BY seq"

# Each state counted through its own index (see migration 3): waiting jobs from the ready
# index, running ones from the lease index, finished ones from theirs.
COUNTS = (
    "SELECT queue, 'enqueued', count(*) FROM onward_jobs INDEXED BY onward_jobs_ready_queue"
    " WHERE state = 'enqueued' AND held_until IS NULL GROUP BY queue"
    " UNION ALL SELECT queue, 'enqueued', count(*) FROM onward_jobs INDEXED BY onward_jobs_held_until"
    " WHERE state = 'enqueued' AND held_until IS NOT NULL GROUP BY queue"
    " UNION ALL SELECT queue, 'running', count(*) FROM onward_jobs INDEXED BY onward_jobs_lease"
    " WHERE state = 'running' GROUP BY queue"
    " UNION ALL SELECT queue, state, count(*) FROM onward_jobs INDEXED BY onward_jobs_done_queue"
    " WHERE state IN ('succeeded', 'failed', 'discarded') GROUP BY queue, state"
)

# The condition for each state, as the partial indexes of migration 3 spell it.
_FINISHED = "state IN ('succeeded', 'failed', 'discarded')"
STATE_SQL = {
    "enqueued": "state = 'enqueued'",
    "running": "state = 'running'",
    **{state: f"state = '{state}' AND {_FINISHED}" for state in ("succeeded", "failed", "discarded")},
}

# ``+state`` keeps SQLite from choosing the index of finished jobs by state (``onward_jobs_done``)
# over ``onward_jobs_finished`` (which holds the state too): that would read every succeeded job.
FINISHED_PER_MINUTE = (
    "SELECT CAST((? - finished_at) / 60 AS INTEGER) AS ago, state, count(*) FROM onward_jobs"
    " WHERE finished_at IS NOT NULL AND finished_at > ? AND finished_at <= ?"
    " AND +state IN ('succeeded', 'failed', 'discarded') GROUP BY ago, state"
)

COUNT_CONTINUATION_FAILED = (
    "SELECT count(*) FROM onward_jobs INDEXED BY onward_jobs_continuation_error"
    " WHERE continuation_error IS NOT NULL AND state = 'succeeded'"
)

# Ready jobs per queue, for the dashboard's Prometheus gauges: read off the waiting-jobs index.
READY_BY_QUEUE = (
    "SELECT queue, count(*), min(scheduled_at) FROM onward_jobs INDEXED BY onward_jobs_ready_queue"
    " WHERE state = 'enqueued' AND held_until IS NULL AND scheduled_at <= ? GROUP BY queue"
)

STATE_AND_KEY = "SELECT state, unique_key FROM onward_jobs WHERE id = ?"
EXISTS = "SELECT 1 FROM onward_jobs WHERE id = ?"

DISCARD = "UPDATE onward_jobs SET state = 'discarded', finished_at = ? WHERE id = ? AND state IN ({states})"


def purge_sql(states: int) -> str:
    """Delete up to ``LIMIT`` finished jobs in ``states`` states, oldest first."""
    marks = ", ".join("?" * states)
    return (
        "DELETE FROM onward_jobs WHERE seq IN (SELECT seq FROM onward_jobs"
        f" WHERE finished_at IS NOT NULL AND finished_at < ? AND +state IN ({marks})"
        " ORDER BY finished_at LIMIT ?)"
    )


# -- schedules ---------------------------------------------------------------------------------
# A schedule new to the store ticks from its first sight; declaring it again refreshes its
# settings (and, from a running worker, when a live worker last declared it).
# (Nothing is written when the settings are the same and no worker declares it.)
DECLARE_SCHEDULE = (
    "INSERT INTO onward_schedules (key, job_class, cron, every, timezone, settings, first_seen, ticked_through,"
    " declared_at, declared_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET job_class = excluded.job_class, cron = excluded.cron,"
    " every = excluded.every, timezone = excluded.timezone, settings = excluded.settings,"
    " declared_at = coalesce(excluded.declared_at, declared_at),"
    " declared_by = coalesce(excluded.declared_by, declared_by)"
    " WHERE excluded.declared_at IS NOT NULL OR job_class IS NOT excluded.job_class OR cron IS NOT excluded.cron"
    " OR every IS NOT excluded.every OR timezone IS NOT excluded.timezone OR settings IS NOT excluded.settings"
)
DECLARED = "SELECT ticked_through, paused, declared_at, declared_by FROM onward_schedules WHERE key = ?"
UNDECLARE = "UPDATE onward_schedules SET declared_at = NULL, declared_by = NULL WHERE key = ? AND declared_by = ?"
# Ticking: statements over many schedules or ticks, in a few power-of-two shapes.
SET_TICK_JOB = "UPDATE onward_schedule_ticks SET job_id = ? WHERE schedule_key = ? AND tick = ?"
PRUNE_TICKS = "DELETE FROM onward_schedule_ticks WHERE schedule_key = ? AND tick < ?"
_INSERT_HEAD, _INSERT_ROW = INSERT.split(" VALUES ")


@lru_cache(maxsize=16)
def schedules_for_ticks_sql(keys: int) -> str:
    """Each schedule's state and whether its latest job is enqueued or running."""
    return (
        "SELECT s.key, s.ticked_through, s.paused, j.state IN ('enqueued', 'running') FROM onward_schedules AS s"
        f" LEFT JOIN onward_jobs AS j ON j.id = s.last_job_id WHERE s.key IN ({', '.join('?' * keys)})"
    )


@lru_cache(maxsize=16)
def insert_ticks_sql(rows: int) -> str:
    """Record ticks, each once per schedule; returns those that were new."""
    values = ", ".join(["(?, ?, ?, ?, ?)"] * rows)
    return (
        "INSERT OR IGNORE INTO onward_schedule_ticks (schedule_key, tick, job_id, skipped, recorded_at)"
        f" VALUES {values} RETURNING schedule_key, tick"
    )


@lru_cache(maxsize=16)
def insert_many_sql(rows: int) -> str:
    """:data:`INSERT` for ``rows`` jobs (without unique keys) in one statement."""
    return f"{_INSERT_HEAD} VALUES " + ", ".join([_INSERT_ROW] * rows)


@lru_cache(maxsize=16)
def ticked_sql(rows: int) -> str:
    """Move schedules on: (key, ticked_through, last_tick, last_tick_skipped, last_job_id) rows."""
    values = ", ".join(["(?, ?, ?, ?, ?)"] * rows)
    return (
        "UPDATE onward_schedules SET ticked_through = v.column2, last_tick = coalesce(v.column3, last_tick),"
        " last_tick_skipped = coalesce(v.column4, last_tick_skipped), last_job_id = coalesce(v.column5, last_job_id)"
        f" FROM (VALUES {values}) AS v WHERE onward_schedules.key = v.column1"
    )


LIST_SCHEDULES = (
    "SELECT s.*, j.state AS last_job_state FROM onward_schedules AS s"
    " LEFT JOIN onward_jobs AS j ON j.id = s.last_job_id ORDER BY s.key"
)
PAUSE_SCHEDULE = "UPDATE onward_schedules SET paused = 1, paused_at = coalesce(paused_at, ?) WHERE key = ?"
# Resuming starts again from now: the ticks of the paused time are not caught up.
RESUME_SCHEDULE = (
    "UPDATE onward_schedules SET ticked_through = CASE WHEN paused THEN max(ticked_through, ?) ELSE ticked_through END,"
    " paused = 0, paused_at = NULL WHERE key = ?"
)


# -- limits (see ``limits.py``) ------------------------------------------------------------------
#: ``held_until`` of a job held while its key's concurrency is full (the trigger of migration 7
#: makes the first of them ready again when a job of the key stops running).
HELD_FOR_SLOT = 1e300
UNHOLD_DUE = "UPDATE onward_jobs SET held_until = NULL WHERE state = 'enqueued' AND held_until <= ?"
HOLDS_DUE = "SELECT 1 FROM onward_jobs INDEXED BY onward_jobs_held_until WHERE state = 'enqueued' AND held_until <= ?"
READY_LIMITS = "SELECT limit_key, limit_concurrency, throttle_limit, throttle_per FROM onward_jobs WHERE seq = ?"
RUNNING_WITH_KEY = "SELECT count(*) FROM onward_jobs WHERE state = 'running' AND limit_key = ?"
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
