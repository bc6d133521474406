"""SQL of concurrency and rate limits on the PostgreSQL store (see ``limits.py`` beside it)."""

from __future__ import annotations

from onward.stores.postgres.sql import CLAIM_COLUMNS, HELD_FOR_SLOT, NOT_PAUSED

#: First key of the advisory locks on limit keys: a claim deciding about a key holds it
#: exclusively (trying, never waiting); the trigger that gives a slot back takes it shared.
LIMIT_LOCK_CLASS = 7237240
# The database's clock at the claim; held jobs whose throttle window has freed are ready again.
LIMIT_NOW = (
    "WITH t AS (SELECT clock_timestamp() AS at, set_config('synchronous_commit', 'off', true)),"
    " u AS (UPDATE onward_jobs SET held_until = NULL WHERE state = 'enqueued' AND held_until <= (SELECT at FROM t))"
    " SELECT extract(epoch FROM at)::float8 FROM t"
)
_LIMIT_CANDIDATES = (
    "SELECT seq, limit_key, limit_concurrency, throttle_limit, throttle_per FROM onward_jobs"
    " WHERE state = 'enqueued' AND held_until IS NULL AND scheduled_at <= to_timestamp(%s){queue}"
    + NOT_PAUSED
    # (keys another claim is deciding about are passed over)
    + " AND (limit_key IS NULL OR limit_key <> ALL(%s::text[])) ORDER BY {order} LIMIT %s FOR UPDATE SKIP LOCKED"
)
LIMIT_CANDIDATES = {
    "any": _LIMIT_CANDIDATES.format(queue="", order="priority, scheduled_at, seq"),
    "one": _LIMIT_CANDIDATES.format(queue=" AND queue = %s", order="queue, priority, scheduled_at, seq"),
    "many": _LIMIT_CANDIDATES.format(queue=" AND queue = ANY(%s)", order="priority, scheduled_at, seq"),
}
# The keys whose lock this claim got (trying, never waiting), then, in a statement of its own
# (so that it sees what was committed before the locks were taken), their running jobs.
TRY_LOCK_KEYS = (
    f"SELECT k FROM unnest(%s::text[]) AS k WHERE pg_try_advisory_xact_lock({LIMIT_LOCK_CLASS}, hashtext(k))"
)
RUNNING_WITH_KEYS = (
    "SELECT limit_key, count(*) FROM onward_jobs WHERE state = 'running' AND limit_key = ANY(%s) GROUP BY limit_key"
)
RUNNING_WITH_KEY = "SELECT count(*) FROM onward_jobs WHERE state = 'running' AND limit_key = %s"
STARTS_WITH_KEY = (
    "SELECT extract(epoch FROM started_at)::float8 FROM onward_limit_starts"
    " WHERE limit_key = %s AND started_at > to_timestamp(%s) ORDER BY started_at"
)
# Every ready job of the key that the same numbers hold back, but those another claim has locked.
HOLD_FOR_SLOT = (
    "UPDATE onward_jobs SET held_until = "
    + HELD_FOR_SLOT
    + " WHERE seq IN (SELECT seq FROM onward_jobs WHERE limit_key = %s"
    " AND state = 'enqueued' AND held_until IS NULL AND scheduled_at <= to_timestamp(%s) AND limit_concurrency <= %s"
    " FOR UPDATE SKIP LOCKED)"
)
HOLD_FOR_WINDOW = (
    "UPDATE onward_jobs SET held_until = to_timestamp(%s) WHERE seq IN (SELECT seq FROM onward_jobs"
    " WHERE limit_key = %s AND state = 'enqueued' AND held_until IS NULL AND scheduled_at <= to_timestamp(%s)"
    " AND throttle_per = %s AND throttle_limit <= %s FOR UPDATE SKIP LOCKED)"
)
UNHOLD_FOR_SLOT = (
    "UPDATE onward_jobs SET held_until = NULL WHERE seq IN (SELECT h.seq"
    " FROM unnest(%s::text[], %s::int[]) AS r(k, room) CROSS JOIN LATERAL (SELECT seq FROM onward_jobs"
    " WHERE limit_key = r.k AND state = 'enqueued' AND held_until = " + HELD_FOR_SLOT + ""
    " ORDER BY priority, scheduled_at, seq LIMIT r.room FOR UPDATE SKIP LOCKED) AS h)"
)
CLAIM_SEQS = (
    "UPDATE onward_jobs SET state = 'running', lease_token = gen_random_uuid()::text, worker_id = %s,"
    " lease_timeout = %s, lease_expires_at = to_timestamp(%s) + make_interval(secs => %s),"
    " started_at = to_timestamp(%s), attempts = attempts + 1 - resume_pending::int, progressed = false,"
    f" held_until = NULL WHERE seq = ANY(%s) AND state = 'enqueued' RETURNING {CLAIM_COLUMNS}"
)
RECORD_STARTS = "INSERT INTO onward_limit_starts (limit_key, started_at) SELECT unnest(%s::text[]), to_timestamp(%s)"
KEEP_WINDOW = (
    "INSERT INTO onward_limit_windows AS w (limit_key, longest) VALUES (%s, %s)"
    " ON CONFLICT (limit_key) DO UPDATE SET longest = greatest(w.longest, excluded.longest) RETURNING longest"
)
PRUNE_STARTS = "DELETE FROM onward_limit_starts WHERE limit_key = %s AND started_at <= to_timestamp(%s)"
LIMIT_STATE = (
    "SELECT limit_key, limit_concurrency, throttle_limit, throttle_per, extract(epoch FROM held_until)::float8,"
    " extract(epoch FROM clock_timestamp())::float8 FROM onward_jobs WHERE id = %s"
)
HELD_BY_KEY = (
    "SELECT limit_key, count(*) FROM onward_jobs WHERE state = 'enqueued' AND held_until IS NOT NULL GROUP BY limit_key"
)
RUNNING_BY_KEY = (
    "SELECT limit_key, count(*) FROM onward_jobs WHERE state = 'running' AND limit_key IS NOT NULL GROUP BY limit_key"
)
