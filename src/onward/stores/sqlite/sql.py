"""The SQL of the SQLite store. Statements are constant strings (or built from constants and
counts); values always travel as parameters."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from onward.stores._common import CLAIMED_COLUMNS

GUARD = " WHERE id = ? AND state = 'running' AND lease_token = ?"

# A job with a batch or a limit key changes state only through a statement that names both
# columns in its SET list (``TRACKED``): that fires the triggers of migration 11, which move
# the batch's counters and give the key's slot back. Other jobs change state through the
# statements ending in ``UNTRACKED``, which refuse those rows, so they pay nothing for the
# triggers; the store then runs the tracked statement when the untracked one changed nothing.
# (Claims need neither: a job going from enqueued to running changes no counter and frees no
# slot.) ``tests/stores/test_sqlite_tracked.py`` checks every statement of this module.
TRACKED = " batch_id = batch_id, limit_key = limit_key,"
UNTRACKED = " AND batch_id IS NULL AND limit_key IS NULL"

INSERT = (
    "INSERT INTO onward_jobs (id, job_class, queue, priority, args, kwargs, state, max_attempts,"
    " max_resumptions, scheduled_at, enqueued_at, unique_key, parent_id, trace_context, schedule_key, scheduled_for,"
    " run_timeout, batch_id, limit_key, limit_concurrency, throttle_limit, throttle_per)"
    " VALUES (?, ?, ?, ?, ?, ?, 'enqueued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

LATEST_WITH_KEY = "SELECT id, state FROM onward_jobs WHERE unique_key = ? ORDER BY seq DESC LIMIT 1"
LIVE_WITH_KEY = "SELECT 1 FROM onward_jobs WHERE unique_key = ? AND state IN ('enqueued', 'running') LIMIT 1"

# A failed job run again by its unique key or by an operator: attempts start from zero,
# progress and resumptions are kept.
RERUN = (
    "UPDATE onward_jobs SET" + TRACKED + " state = 'enqueued', attempts = 0, resume_pending = 0,"
    " cancel_requested_at = NULL, scheduled_at = ?, finished_at = NULL WHERE id = ? AND state = 'failed'"
)
# An operator's retry: the same, from any state that allows it (see ``lifecycle.ACTIONS``).
RETRY_JOB = (
    "UPDATE onward_jobs SET" + TRACKED + " state = 'enqueued', attempts = 0, resume_pending = 0,"
    " cancel_requested_at = NULL, scheduled_at = ?, finished_at = NULL, held_until = NULL"
    " WHERE id = ? AND state IN ({states})"
)
RESET_ATTEMPTS = "UPDATE onward_jobs SET attempts = 0, resume_pending = 0, cancel_requested_at = NULL WHERE id = ?"

_TAKE = (
    "UPDATE onward_jobs SET state = 'running', lease_token = lower(hex(randomblob(8))), worker_id = ?,"
    " lease_timeout = ?, lease_expires_at = ?, started_at = ?,"
)
START_NOW = _TAKE + (
    TRACKED + " finished_at = NULL, attempts = attempts + 1 - resume_pending, progressed = 0"
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
    """Claim the ready jobs whose ``seq`` is given (checked against their limits first); each
    row ends with the job's limit key."""
    marks = ", ".join("?" * rows)
    return _TAKE + (
        " attempts = attempts + 1 - resume_pending, progressed = 0, held_until = NULL"
        f" WHERE seq IN ({marks}) AND state = 'enqueued' RETURNING {CLAIMED_COLUMNS}, limit_key"
    )


# The renewal returns whether a cancellation was requested: the worker learns of it here.
HEARTBEAT = "UPDATE onward_jobs SET lease_expires_at = ?" + GUARD + " RETURNING cancel_requested_at IS NOT NULL"

# A job given back to the queue while a cancellation request is pending is cancelled instead
# (its ``finished_at`` is the statement's first parameter): it never runs again by itself.
_BACK = (
    "state = CASE WHEN cancel_requested_at IS NULL THEN 'enqueued' ELSE 'cancelled' END,"
    " finished_at = CASE WHEN cancel_requested_at IS NULL THEN NULL ELSE ? END,"
)

# Cancelling: an enqueued job at once; a running one gets the request, which its execution
# notices (through its heartbeat) and ends with ``CANCEL_RUNNING``.
CANCEL_ENQUEUED = (
    "UPDATE onward_jobs SET" + TRACKED + " state = 'cancelled', finished_at = ?,"
    " cancel_requested_at = coalesce(cancel_requested_at, ?) WHERE id = ? AND state = 'enqueued'"
)
REQUEST_CANCEL = (
    "UPDATE onward_jobs SET cancel_requested_at = coalesce(cancel_requested_at, ?) WHERE id = ? AND state = 'running'"
)
CANCEL_RUNNING = (
    "UPDATE onward_jobs SET" + TRACKED + " state = 'cancelled', finished_at = ?, steps = ?, job_state = ?,"
    " error = coalesce(?, error), lease_token = NULL, lease_expires_at = NULL" + GUARD
)

SAVE_CHECKPOINT = (
    "UPDATE onward_jobs SET steps = ?, job_state = ?, progressed = progressed | ?,"
    " resumptions = resumptions + ?" + GUARD
)

_COMPLETE = (
    " state = 'succeeded', finished_at = ?, result = ?, steps = ?, job_state = ?,"
    " continuation_error = ?, lease_token = NULL, lease_expires_at = NULL" + GUARD
)
COMPLETE = "UPDATE onward_jobs SET" + _COMPLETE + UNTRACKED
COMPLETE_TRACKED = "UPDATE onward_jobs SET" + TRACKED + _COMPLETE

# A re-run of the continuations of a succeeded job whose block had raised.
SET_CONTINUATION_ERROR = (
    "UPDATE onward_jobs SET continuation_error = ?"
    " WHERE id = ? AND state = 'succeeded' AND continuation_error IS NOT NULL"
)

#: Rows per ``complete_many`` statement at most: 6 parameters each, far below SQLite's limit.
COMPLETE_CHUNK = 512


@lru_cache(maxsize=32)
def complete_many_sql(rows: int, tracked: bool = False) -> str:
    """One UPDATE for ``rows`` successes, each row guarded by its id, state and lease token
    (jobs without a batch or limit key only, unless ``tracked``)."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)
    return (
        "UPDATE onward_jobs SET" + (TRACKED if tracked else "") + " state = 'succeeded', finished_at = ?,"
        " result = d.column3, steps = d.column4, job_state = d.column5, continuation_error = d.column6,"
        f" lease_token = NULL, lease_expires_at = NULL FROM (VALUES {values}) AS d"
        " WHERE onward_jobs.id = d.column1 AND onward_jobs.state = 'running' AND onward_jobs.lease_token = d.column2"
        + ("" if tracked else UNTRACKED)
        + " RETURNING onward_jobs.id"
    )


UNCLAIM = (
    "UPDATE onward_jobs SET" + TRACKED + " " + _BACK + " attempts = attempts - 1 + resume_pending,"
    " lease_token = NULL, lease_expires_at = NULL, worker_id = NULL" + GUARD
)

_REQUEUE = (
    " " + _BACK + " scheduled_at = ?, steps = ?, job_state = ?,"
    " error = COALESCE(?, error), resumptions = resumptions + ?, resume_pending = ?,"
    " lease_token = NULL, lease_expires_at = NULL" + GUARD
)
REQUEUE = "UPDATE onward_jobs SET" + _REQUEUE + UNTRACKED
REQUEUE_TRACKED = "UPDATE onward_jobs SET" + TRACKED + _REQUEUE

_FAIL = " state = ?, finished_at = ?, steps = ?, job_state = ?, error = ?, lease_token = NULL, lease_expires_at = NULL"
FAIL = "UPDATE onward_jobs SET" + _FAIL + GUARD + UNTRACKED
FAIL_TRACKED = "UPDATE onward_jobs SET" + TRACKED + _FAIL + GUARD

# Jobs whose worker died: found through the lease index, then each decided by the lifecycle.
EXPIRED_PROBE = "SELECT 1 FROM onward_jobs WHERE state = 'running' AND lease_expires_at < ? LIMIT 1"
_TAKE_BACK_COLUMNS = (
    "SELECT id, lease_token, attempts, max_attempts, resumptions, max_resumptions, progressed,"
    " cancel_requested_at IS NOT NULL AS cancel_requested, job_class, worker_id"
)
EXPIRED = _TAKE_BACK_COLUMNS + " FROM onward_jobs WHERE state = 'running' AND lease_expires_at < ?"
# A running job a stopping worker gives back (``RUNNING_UNDER + GUARD``): decided as for a lost lease.
RUNNING_UNDER = _TAKE_BACK_COLUMNS + " FROM onward_jobs"
# The jobs a dead worker process held (``RUNNING_UNDER + OF_WORKER``), taken over at once.
OF_WORKER = " WHERE state = 'running' AND worker_id = ?"
AND_WORKER = " AND worker_id = ?"
REAP_RESUME = (
    "UPDATE onward_jobs SET" + TRACKED + " state = 'enqueued', scheduled_at = ?, resume_pending = 1,"
    " resumptions = resumptions + 1, lease_token = NULL, lease_expires_at = NULL" + GUARD
)
REAP_RETRY = (
    "UPDATE onward_jobs SET" + TRACKED + " state = 'enqueued', scheduled_at = ?, resume_pending = 0,"
    " error = ?, lease_token = NULL, lease_expires_at = NULL" + GUARD
)
REAP_CANCEL = (
    "UPDATE onward_jobs SET" + TRACKED + " state = 'cancelled', finished_at = ?, lease_token = NULL,"
    " lease_expires_at = NULL" + GUARD
)
REAP_FAIL = (
    "UPDATE onward_jobs SET" + TRACKED + " state = 'failed', finished_at = ?, error = ?,"
    " lease_token = NULL, lease_expires_at = NULL" + GUARD
)

ADVANCE_WAITING = "UPDATE onward_jobs SET scheduled_at = scheduled_at - ? WHERE state = 'enqueued' AND scheduled_at > ?"

# Paused queues are left out: one primary-key probe of ``onward_queues`` (a few rows, usually
# none) per candidate row, which a claim of one job pays once. (``queue NOT IN (SELECT ...)``
# built a list per statement instead, and cost a claim about half as much again.)
NOT_PAUSED = " AND NOT EXISTS (SELECT 1 FROM onward_queues AS p WHERE p.name = onward_jobs.queue AND p.paused)"
_READY = (
    "SELECT seq, priority, scheduled_at, limit_key FROM onward_jobs INDEXED BY {index} WHERE state = 'enqueued'"
    " AND held_until IS NULL AND scheduled_at <= ?{queue}"
    + NOT_PAUSED
    + " ORDER BY priority, scheduled_at, seq LIMIT ?"
)


def ready_seqs(queues: Sequence[str] | None, now: float, limit: int) -> tuple[str, tuple[Any, ...]]:
    """The ``seq`` of the next ``limit`` ready jobs, read straight off a ready index.

    The indexes are named so that the cost stays the same with a backlog of millions (left
    to itself, the planner may pick another index and sort every enqueued row). With several
    queues, each queue's index yields its first ``limit`` rows and those are merged.
    """
    return _seqs_sql(len(queues) if queues else 0), _ready_params(queues, now, limit)


def ready_rows(queues: Sequence[str] | None, now: float, limit: int) -> tuple[str, tuple[Any, ...]]:
    """The next ``limit`` ready jobs as (seq, priority, scheduled_at, limit_key) rows, in
    claim order (held jobs are not in the ready indexes)."""
    return _rows_sql(len(queues) if queues else 0), _ready_params(queues, now, limit)


def claim_sql(queues: Sequence[str] | None) -> str:
    """``CLAIM`` of the jobs ``ready_seqs`` finds (its parameters follow the claim's own)."""
    return _claim_sql(len(queues) if queues else 0)


def _ready_params(queues: Sequence[str] | None, now: float, limit: int) -> tuple[Any, ...]:
    if not queues:
        return (now, limit)
    if len(queues) == 1:
        return (now, queues[0], limit)
    params: list[Any] = []
    for name in queues:
        params += [now, name, limit]
    return (*params, limit)


# The text of a claim depends only on how many queues it names (their names are parameters):
# each is built once, not at every claim.
@lru_cache(maxsize=64)
def _rows_sql(queues: int) -> str:
    if not queues:
        return _READY.format(index="onward_jobs_ready", queue="")
    one = _READY.format(index="onward_jobs_ready_queue", queue=" AND queue = ?")
    if queues == 1:
        return one
    union = " UNION ALL ".join(f"SELECT * FROM ({one})" for _ in range(queues))
    return f"SELECT * FROM ({union}) ORDER BY priority, scheduled_at, seq LIMIT ?"


@lru_cache(maxsize=64)
def _seqs_sql(queues: int) -> str:
    return f"SELECT seq FROM ({_rows_sql(queues)})"


@lru_cache(maxsize=64)
def _claim_sql(queues: int) -> str:
    return CLAIM.format(ready=_seqs_sql(queues))


# When the next job is due: the first scheduled one not held, or the first throttled one's window.
NEXT_DUE = (
    "SELECT min(due) FROM (SELECT min(scheduled_at) AS due FROM onward_jobs WHERE state = 'enqueued'"
    " AND held_until IS NULL{queue}" + NOT_PAUSED + " UNION ALL SELECT min(held_until) FROM onward_jobs"
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
    " UNION ALL SELECT queue, 'cancelled', count(*) FROM onward_jobs INDEXED BY onward_jobs_cancelled"
    " WHERE state = 'cancelled' GROUP BY queue"
)

# The condition for each state, as the partial indexes of migration 3 spell it.
_FINISHED = "state IN ('succeeded', 'failed', 'discarded')"
STATE_SQL = {
    "enqueued": "state = 'enqueued'",
    "running": "state = 'running'",
    **{state: f"state = '{state}' AND {_FINISHED}" for state in ("succeeded", "failed", "discarded")},
    "cancelled": "state = 'cancelled'",
}

# ``+state`` keeps SQLite from choosing the index of finished jobs by state (``onward_jobs_done``)
# over ``onward_jobs_finished`` (which holds the state too): that would read every succeeded job.
FINISHED_PER_MINUTE = (
    "SELECT CAST((? - finished_at) / 60 AS INTEGER) AS ago, state, count(*) FROM onward_jobs"
    " WHERE finished_at IS NOT NULL AND finished_at > ? AND finished_at <= ?"
    " AND +state IN ('succeeded', 'failed', 'discarded', 'cancelled') GROUP BY ago, state"
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

DISCARD = (
    "UPDATE onward_jobs SET" + TRACKED + " state = 'discarded', finished_at = ? WHERE id = ? AND state IN ({states})"
)


def purge_sql(states: int) -> str:
    """Delete up to ``LIMIT`` finished jobs in ``states`` states, oldest first."""
    marks = ", ".join("?" * states)
    return (
        "DELETE FROM onward_jobs WHERE seq IN (SELECT seq FROM onward_jobs"
        f" WHERE finished_at IS NOT NULL AND finished_at < ? AND +state IN ({marks})"
        " ORDER BY finished_at LIMIT ?)"
    )


# -- queues --------------------------------------------------------------------------------------
QUEUES = "SELECT name, paused, paused_at FROM onward_queues ORDER BY name"
PAUSE_QUEUE = (
    "INSERT INTO onward_queues (name, paused, paused_at) VALUES (?, 1, ?)"
    " ON CONFLICT (name) DO UPDATE SET paused = 1, paused_at = coalesce(paused_at, excluded.paused_at)"
)
RESUME_QUEUE = "DELETE FROM onward_queues WHERE name = ?"
