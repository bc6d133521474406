"""SQL of concurrency and rate limits on the PostgreSQL store (see ``limits.py`` beside it)."""

from __future__ import annotations

from onward.stores._common import CLAIMED_COLUMNS

#: First key of the advisory locks on limit keys: a claim deciding about a key holds it
#: exclusively (trying, never waiting); the trigger that gives a slot back takes it shared.
LIMIT_LOCK_CLASS = 7237240
# Jobs claimed with their limits applied, by the function of migration 10 (see ``limits.py``):
# whether each has a limit key, and the last two columns order the claimed rows.
CLAIM_LIMITED = (
    f"SELECT {CLAIMED_COLUMNS}, limit_key IS NOT NULL, scheduled_at, seq"
    " FROM onward_claim_limited(%s, %s::text[], %s, %s)"
)
RUNNING_WITH_KEY = "SELECT count(*) FROM onward_jobs WHERE state = 'running' AND limit_key = %s"
STARTS_WITH_KEY = (
    "SELECT extract(epoch FROM started_at)::float8 FROM onward_limit_starts"
    " WHERE limit_key = %s AND started_at > to_timestamp(%s) ORDER BY started_at"
)
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
