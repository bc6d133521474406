"""The SQL of the PostgreSQL store.

Times come from the database (``now()``: the start of the current transaction), never from a
worker's clock. Statements are constant strings (or built from constants and counts); values
always travel as parameters.
"""

from __future__ import annotations

from onward.stores._common import CLAIMED_COLUMNS

#: The ``LISTEN``/``NOTIFY`` channel; the payload is the queue of the job that may be ready.
CHANNEL = "onward_jobs"

#: The channel on which a cancellation request for a running job is announced; the payload is its id.
CANCEL_CHANNEL = "onward_cancel"

#: First key of the two-key advisory locks taken on unique keys (``pg_advisory_xact_lock(int, int)``).
UNIQUE_LOCK_CLASS = 0x6F6E77  # "onw"


#: ``held_until`` of a job held while its key's concurrency is full (a year no clock reaches;
#: not 'infinity', which the driver cannot read as a datetime).
HELD_FOR_SLOT = "'9999-01-01 00:00:00+00'"

GUARD = " WHERE id = %s AND state = 'running' AND lease_token = %s"

# Paused queues are left out of claims: a hashed subplan over a table of a few rows (usually
# none), read once per statement. Written as NOT IN, the planner keeps the ready index's order
# (it guesses half the rows pass); ``<> ALL(ARRAY(...))`` made it guess one row and sort every
# ready job on each claim instead.
NOT_PAUSED = " AND queue NOT IN (SELECT name FROM onward_queues WHERE paused)"

# A job given back to the queue while a cancellation request is pending is cancelled instead:
# it never runs again by itself.
_BACK = (
    "state = CASE WHEN cancel_requested_at IS NULL THEN 'enqueued' ELSE 'cancelled' END,"
    " finished_at = CASE WHEN cancel_requested_at IS NULL THEN NULL ELSE now() END,"
)

CLAIM_COLUMNS = CLAIMED_COLUMNS + ", scheduled_at, seq"  # the last two order the claimed rows

# A claim is committed without waiting for the WAL flush (``synchronous_commit`` off for this
# transaction only): it is a lease, not a result. If the server crashes before the flush, the
# claim is forgotten and the job is ready again; the worker that ran it finds its lease gone
# at its next write, exactly as if the lease had expired. Any later synchronous commit
# (a checkpoint, a result) flushes the claim first, so nothing durable can depend on a lost one.
#
# One round trip whatever happens: the claimed rows in claim order, or, when nothing was
# ready, a single row whose columns are all NULL but the last, the seconds until the next
# scheduled job of these queues is due (NULL: none). The ``LIMIT`` is written into the
# statement (an int, never user data) rather than passed as a parameter, and the update finds
# the chosen rows with ``= ANY`` on the primary key: so the plan the server caches for the
# prepared statement is the right one for every call and it plans the claim only once.
_CLAIM = (
    "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)),"
    " ready AS (SELECT seq, limit_key FROM onward_jobs WHERE state = 'enqueued' AND held_until IS NULL"
    " AND scheduled_at <= now(){queue}" + NOT_PAUSED + " ORDER BY {order} LIMIT {limit} FOR UPDATE SKIP LOCKED),"
    " claimed AS (UPDATE onward_jobs AS j SET state = 'running', lease_token = gen_random_uuid()::text,"
    " worker_id = %s, lease_timeout = %s, lease_expires_at = now() + make_interval(secs => %s), started_at = now(),"
    " attempts = j.attempts + 1 - j.resume_pending::int, progressed = false"
    " FROM relaxed WHERE j.seq = ANY(ARRAY(SELECT seq FROM ready WHERE limit_key IS NULL))"
    f" RETURNING {', '.join('j.' + c for c in CLAIM_COLUMNS.split(', '))})"
    # (The two ordering columns are not sent: a time read costs the client a Python call.)
    f" SELECT {', '.join('c.' + c for c in CLAIMED_COLUMNS.split(', '))},"
    " CASE WHEN c.id IS NULL THEN least((SELECT extract(epoch FROM min(scheduled_at) - now()) FROM onward_jobs"
    " WHERE state = 'enqueued' AND scheduled_at > now(){queue}" + NOT_PAUSED + "),"
    " (SELECT extract(epoch FROM min(held_until) - now())"
    " FROM onward_jobs WHERE state = 'enqueued' AND held_until < " + HELD_FOR_SLOT + "{queue})) END,"
    # Whether jobs with limits were among the first ready ones, or held ones are due again: then
    # ``limits.claim_limited`` claims them with their limits applied.
    " EXISTS (SELECT 1 FROM ready WHERE limit_key IS NOT NULL) OR EXISTS (SELECT 1 FROM onward_jobs"
    " WHERE state = 'enqueued' AND held_until <= now())"
    " FROM (SELECT) AS one LEFT JOIN claimed AS c ON true ORDER BY c.priority, c.scheduled_at, c.seq"
)
_CLAIM_KINDS = {
    # The order names the index's own columns (a single queue is constant), so the scan reads
    # the partial index of ready jobs in order and stops after ``LIMIT`` rows.
    "any": ("", "priority, scheduled_at, seq"),
    "one": (" AND queue = %s", "queue, priority, scheduled_at, seq"),
    "many": (" AND queue = ANY(%s)", "priority, scheduled_at, seq"),
}
_claim_sql: dict[tuple[str, int], str] = {}


def claim_sql(kind: str, limit: int) -> str:
    """The claim statement for ``kind`` (``any``, ``one`` or ``many`` queues) and ``limit``.
    Parameters: the queue filter (none, a queue, a list of queues), worker id, lease timeout
    twice, then the queue filter twice again (for the next due time)."""
    key = (kind, int(limit))
    found = _claim_sql.get(key)
    if found is None:
        queue, order = _CLAIM_KINDS[kind]
        found = _CLAIM.format(queue=queue, order=order, limit=int(limit))
        if len(_claim_sql) < 1000:
            _claim_sql[key] = found
    return found


ADVANCE_WAITING = (
    "UPDATE onward_jobs SET scheduled_at = scheduled_at - make_interval(secs => %s)"
    " WHERE state = 'enqueued' AND scheduled_at > now()"
)

_NEXT_DUE = (
    "SELECT extract(epoch FROM least((SELECT min(scheduled_at) FROM onward_jobs WHERE state = 'enqueued'"
    " AND held_until IS NULL{queue}"
    + NOT_PAUSED
    + "), (SELECT min(held_until) FROM onward_jobs WHERE state = 'enqueued'"
    " AND held_until < " + HELD_FOR_SLOT + "{queue})) - now())"
)
NEXT_DUE_ANY = _NEXT_DUE.format(queue="")
NEXT_DUE_QUEUES = _NEXT_DUE.format(queue=" AND queue = ANY(%s)")


# Statements over many jobs take their rows as one JSON array of arrays: encoding it is a
# single C call, where psycopg builds a PostgreSQL array in Python element by element; as
# ``jsonb`` the server parses it once (``->>`` on ``json`` would parse each element again). The
# ids are compared as "C" text, the collation of the ``id`` column, so its unique index
# finds each row; the rows are guarded one by one and the ids returned are those changed.
def _rows(*columns: str) -> str:
    fields = ", ".join(
        f'(e->>{i}) COLLATE "C" AS {c}' if c == "id" else f"e->>{i} AS {c}" for i, c in enumerate(columns)
    )
    return f"(SELECT {fields} FROM jsonb_array_elements(%s::jsonb) AS e)"


HEARTBEAT = (
    f"WITH l AS {_rows('id', 'token')}"
    " UPDATE onward_jobs AS j SET lease_expires_at = now() + make_interval(secs => %s) FROM l"
    " WHERE j.id = ANY(ARRAY(SELECT id FROM l)) AND j.id = l.id AND j.state = 'running' AND j.lease_token = l.token"
    " RETURNING j.id, j.cancel_requested_at IS NOT NULL"
)

SAVE_CHECKPOINT = (
    "UPDATE onward_jobs SET steps = %s, job_state = %s, progressed = progressed OR %s,"
    " resumptions = resumptions + %s" + GUARD
)

COMPLETE = (
    "UPDATE onward_jobs SET state = 'succeeded', finished_at = now(), result = %s, steps = %s, job_state = %s,"
    " continuation_error = %s, lease_token = NULL, lease_expires_at = NULL" + GUARD + " RETURNING finished_at"
)

COMPLETE_MANY = (
    f"WITH c AS {_rows('id', 'token', 'result', 'steps', 'job_state', 'continuation_error')}"
    " UPDATE onward_jobs AS j SET state = 'succeeded', finished_at = now(), result = c.result, steps = c.steps,"
    " job_state = c.job_state, continuation_error = c.continuation_error, lease_token = NULL, lease_expires_at = NULL"
    " FROM c WHERE j.id = ANY(ARRAY(SELECT id FROM c)) AND j.id = c.id AND j.state = 'running'"
    " AND j.lease_token = c.token RETURNING j.id"
)

UNCLAIM = (
    f"WITH l AS {_rows('id', 'token')},"
    " u AS (UPDATE onward_jobs AS j SET " + _BACK + " attempts = j.attempts - 1 + j.resume_pending::int,"
    " lease_token = NULL, lease_expires_at = NULL, worker_id = NULL FROM l"
    " WHERE j.id = ANY(ARRAY(SELECT id FROM l)) AND j.id = l.id AND j.state = 'running' AND j.lease_token = l.token"
    " RETURNING j.queue)"
    f" SELECT pg_notify('{CHANNEL}', queue) FROM (SELECT DISTINCT queue FROM u) AS q"
)

# The jobs of a batch insert, one JSON array per job (see ``_rows``), numbered to keep their order.
_JOB_FIELDS = (
    "e->>0 AS id, e->>1 AS job_class, e->>2 AS queue, (e->>3)::int AS priority, e->>4 AS args,"
    " e->>5 AS kwargs, (e->>6)::int AS max_attempts, (e->>7)::int AS max_resumptions,"
    " (e->>8)::float8 AS delay, (e->>9)::float8 AS run_at, e->>10 AS trace_context, e->>11 AS schedule_key,"
    " to_timestamp((e->>12)::float8) AS scheduled_for, (e->>13)::float8 AS run_timeout, e->>14 AS limit_key,"
    " (e->>15)::int AS limit_concurrency, (e->>16)::int AS throttle_limit, (e->>17)::float8 AS throttle_per, ord"
)
_ARRAYS = f"(SELECT {_JOB_FIELDS} FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS r(e, ord)) AS c"
# The same, each row followed by its parent's id (``inserts.parented_rows``).
_PARENTED_ARRAYS = (
    f'(SELECT {_JOB_FIELDS}, (r.p->>1) COLLATE "C" AS parent_id'
    " FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS r(p, ord), LATERAL (SELECT r.p->0 AS e) AS x) AS c"
)
_INSERT_COLUMNS = (
    "INSERT INTO onward_jobs (id, job_class, queue, priority, args, kwargs, state, max_attempts,"
    " max_resumptions, scheduled_at, enqueued_at, parent_id, trace_context, schedule_key, scheduled_for, run_timeout,"
    " limit_key, limit_concurrency, throttle_limit, throttle_per, batch_id)"
)
# The values of the columns after ``parent_id`` in ``_INSERT_COLUMNS`` but ``batch_id``, from
# ``_ARRAYS``' rows.
_CARRIED = (
    "c.trace_context, c.schedule_key, c.scheduled_for, c.run_timeout,"
    " c.limit_key, c.limit_concurrency, c.throttle_limit, c.throttle_per"
)
_NOTIFY_NEW = f"SELECT pg_notify('{CHANNEL}', queue) FROM (SELECT DISTINCT queue FROM new) AS q"

INSERT_BATCH = (
    f"WITH new AS ({_INSERT_COLUMNS} SELECT c.id, c.job_class, c.queue, c.priority, c.args, c.kwargs,"
    " 'enqueued', c.max_attempts, c.max_resumptions,"
    f" coalesce(to_timestamp(c.run_at), b.base + make_interval(secs => c.delay)), b.base, %s, {_CARRIED}, %s"
    f" FROM (SELECT coalesce(%s::timestamptz, now()) AS base) AS b CROSS JOIN {_ARRAYS}"
    f" ORDER BY c.ord RETURNING queue) {_NOTIFY_NEW}"
)

# One job without a unique key (``perform_later``): scalar parameters, the row and its
# notification in one statement, one round trip.
INSERT_ONE = (
    f"WITH new AS ({_INSERT_COLUMNS} VALUES (%s, %s, %s, %s::int, %s, %s, 'enqueued', %s::int, %s::int,"
    " coalesce(to_timestamp(%s::float8), coalesce(%s::timestamptz, now()) + make_interval(secs => %s::float8)),"
    " coalesce(%s::timestamptz, now()), %s, %s, %s, to_timestamp(%s::float8), %s::float8,"
    " %s, %s::int, %s::int, %s::float8, %s)"
    f" RETURNING queue) {_NOTIFY_NEW}"
)

COMPLETE_WITH_CHILDREN = (
    "WITH done AS (" + COMPLETE + "),"
    f" new AS ({_INSERT_COLUMNS} SELECT c.id, c.job_class, c.queue, c.priority, c.args, c.kwargs,"
    " 'enqueued', c.max_attempts, c.max_resumptions,"
    " coalesce(to_timestamp(c.run_at), done.finished_at + make_interval(secs => c.delay)), done.finished_at, %s,"
    f" {_CARRIED}, NULL FROM {_ARRAYS} CROSS JOIN done ORDER BY c.ord RETURNING queue),"
    f" notified AS ({_NOTIFY_NEW})"
    " SELECT (SELECT count(*) FROM done), (SELECT count(*) FROM notified)"
)

# Successes with their continuations (``complete_many``): the continuations of the rows
# written are inserted, delays counted from their parent's success, and announced.
COMPLETE_MANY_WITH_CHILDREN = (
    f"WITH c AS {_rows('id', 'token', 'result', 'steps', 'job_state', 'continuation_error')},"
    " done AS (UPDATE onward_jobs AS j SET state = 'succeeded', finished_at = now(), result = c.result,"
    " steps = c.steps, job_state = c.job_state, continuation_error = c.continuation_error, lease_token = NULL,"
    " lease_expires_at = NULL FROM c WHERE j.id = ANY(ARRAY(SELECT id FROM c)) AND j.id = c.id"
    " AND j.state = 'running' AND j.lease_token = c.token RETURNING j.id, j.finished_at),"
    f" new AS ({_INSERT_COLUMNS} SELECT c.id, c.job_class, c.queue, c.priority, c.args, c.kwargs,"
    " 'enqueued', c.max_attempts, c.max_resumptions,"
    " coalesce(to_timestamp(c.run_at), done.finished_at + make_interval(secs => c.delay)), done.finished_at,"
    f" c.parent_id, {_CARRIED}, NULL FROM {_PARENTED_ARRAYS}"
    " JOIN done ON done.id = c.parent_id ORDER BY c.ord RETURNING queue),"
    f" notified AS ({_NOTIFY_NEW})"  # a plain SELECT runs only if read: the count reads it
    " SELECT id FROM done WHERE (SELECT count(*) FROM notified) >= 0"
)

REQUEUE = (
    "WITH u AS (UPDATE onward_jobs SET " + _BACK + " scheduled_at = now() + make_interval(secs => %s),"
    " steps = %s, job_state = %s, error = coalesce(%s, error), resumptions = resumptions + %s,"
    " resume_pending = %s, lease_token = NULL, lease_expires_at = NULL" + GUARD + " RETURNING queue)"
    f" SELECT pg_notify('{CHANNEL}', queue) FROM u"
)

# An execution that noticed its cancellation request ends the job, keeping its progress.
CANCEL_RUNNING = (
    "UPDATE onward_jobs SET state = 'cancelled', finished_at = now(), steps = %s, job_state = %s,"
    " error = coalesce(%s, error), lease_token = NULL, lease_expires_at = NULL" + GUARD
)
# Cancelling: an enqueued job at once; a running one gets the request, announced on
# ``CANCEL_CHANNEL`` so that its worker stops it at once. One statement: the state found
# (NULL: none changed) and whether the job exists.
CANCEL_JOB = (
    "WITH u AS (UPDATE onward_jobs SET state = CASE WHEN state = 'enqueued' THEN 'cancelled' ELSE state END,"
    " finished_at = CASE WHEN state = 'enqueued' THEN now() ELSE finished_at END,"
    " cancel_requested_at = coalesce(cancel_requested_at, now())"
    " WHERE id = %s AND state IN ('enqueued', 'running') RETURNING state),"
    f" n AS (SELECT pg_notify('{CANCEL_CHANNEL}', %s) FROM u WHERE u.state = 'running')"
    " SELECT (SELECT state FROM u), (SELECT count(*) FROM n), EXISTS (SELECT 1 FROM onward_jobs WHERE id = %s)"
)

FAIL = (
    "UPDATE onward_jobs SET state = %s, finished_at = now(), steps = %s, job_state = %s, error = %s,"
    " lease_token = NULL, lease_expires_at = NULL" + GUARD
)


def _take_back(where: str, lock: str, *, each: bool = False) -> str:
    """Resume (progress saved), retry, or fail for good the running jobs ``where`` selects,
    as :func:`onward.lifecycle.after_lost_lease` decides (or end them as cancelled when a
    cancellation was requested), in one statement. Parameters: those
    of ``where``, then the error recorded on a retry or a failure without progress. Returns
    how many jobs it took back, and how many of them went back to the queue; with ``each``,
    a row per job instead: its id, class, worker and what became of it."""
    if each:
        end = (
            " SELECT id, job_class, worker_id, verdict,"
            f" CASE WHEN state = 'enqueued' THEN pg_notify('{CHANNEL}', queue) END FROM u"
        )
    else:
        end = f" SELECT count(*), count(pg_notify('{CHANNEL}', queue)) FILTER (WHERE state = 'enqueued') FROM u"
    return (
        "WITH expired AS (SELECT seq, CASE WHEN cancel_requested_at IS NOT NULL THEN 'cancel'"
        " WHEN progressed THEN CASE WHEN max_resumptions IS NOT NULL AND resumptions + 1 > max_resumptions"
        " THEN 'limit' ELSE 'resume' END"
        " WHEN attempts >= max_attempts THEN 'lost' ELSE 'retry' END AS verdict"
        f" FROM onward_jobs WHERE {where} FOR UPDATE{lock}),"
        " u AS (UPDATE onward_jobs AS j SET"
        " state = CASE e.verdict WHEN 'cancel' THEN 'cancelled' WHEN 'limit' THEN 'failed' WHEN 'lost' THEN 'failed'"
        " ELSE 'enqueued' END,"
        " finished_at = CASE WHEN e.verdict IN ('limit', 'lost', 'cancel') THEN now() ELSE j.finished_at END,"
        " scheduled_at = CASE WHEN e.verdict IN ('resume', 'retry') THEN now() ELSE j.scheduled_at END,"
        " resume_pending = CASE e.verdict WHEN 'resume' THEN true WHEN 'retry' THEN false ELSE j.resume_pending END,"
        " resumptions = j.resumptions + (e.verdict = 'resume')::int,"
        " error = CASE e.verdict WHEN 'resume' THEN j.error WHEN 'cancel' THEN j.error WHEN 'limit' THEN"
        " 'onward.ResumeLimitExceeded: worker lost after saving progress; resumed more than max_resumptions='"
        " || j.max_resumptions || ' times' ELSE %s END,"
        " lease_token = NULL, lease_expires_at = NULL"
        " FROM expired AS e WHERE j.seq = e.seq"
        " RETURNING j.queue, j.state, j.id, j.job_class, j.worker_id, e.verdict)" + end
    )


# Jobs whose worker died (their lease expired).
REAP = _take_back("state = 'running' AND lease_expires_at < now()", " SKIP LOCKED", each=True)
# A running job a stopping worker gives back: decided as for a lost lease.
RELEASE = _take_back("id = %s AND state = 'running' AND lease_token = %s", "")
# The jobs a dead worker process had started, taken over at once: parameters worker id, the
# lease tokens under which it started them, error.
TAKE_OVER_RAN = _take_back("state = 'running' AND worker_id = %s AND lease_token = ANY(%s)", "")
# ...and those it held without starting them: back to the queue, no attempt used.
UNCLAIM_WORKER = (
    "WITH u AS (UPDATE onward_jobs SET " + _BACK + " attempts = attempts - 1 + resume_pending::int,"
    " lease_token = NULL, lease_expires_at = NULL, worker_id = NULL WHERE state = 'running' AND worker_id = %s"
    f" RETURNING queue) SELECT count(*), count(pg_notify('{CHANNEL}', queue)) FROM u"
)

# ``id`` has the "C" collation and ``parent_id`` the default one: without the explicit
# COLLATE the comparison cannot use onward_jobs_parent and scans the table for every job read.
SELECT_JOB = (
    'SELECT j.*, ARRAY(SELECT c.id FROM onward_jobs AS c WHERE c.parent_id = j.id COLLATE "default"'
    " ORDER BY c.seq) AS children FROM onward_jobs AS j"
)

LATEST_WITH_KEY = "SELECT id, state FROM onward_jobs WHERE unique_key = %s ORDER BY seq DESC LIMIT 1"
INSERT_KEYED = (
    f"{_INSERT_COLUMNS[:-1]}, unique_key) VALUES (%s, %s, %s, %s, %s, %s, 'enqueued', %s, %s,"
    " coalesce(%s, %s + make_interval(secs => %s)), %s, %s, %s, %s, to_timestamp(%s::float8), %s::float8,"
    " %s, %s::int, %s::int, %s::float8, %s, %s)"
)
RERUN_FAILED = (
    "UPDATE onward_jobs SET state = 'enqueued', attempts = 0, resume_pending = false, cancel_requested_at = NULL,"
    " scheduled_at = coalesce(%s, %s + make_interval(secs => %s)), finished_at = NULL"
    " WHERE id = %s AND state = 'failed'"
)

# ``perform_now``: the job is inserted (or an existing one of its unique key taken) and started
# at once, in one transaction.
INSERT_NOW = (
    "INSERT INTO onward_jobs (id, job_class, queue, priority, args, kwargs, state, max_attempts,"
    " max_resumptions, scheduled_at, enqueued_at, unique_key, trace_context, schedule_key, scheduled_for,"
    " run_timeout, limit_key, limit_concurrency, throttle_limit, throttle_per) VALUES (%s, %s, %s, %s, %s, %s,"
    " 'enqueued', %s, %s, now(), now(), %s, %s, %s, to_timestamp(%s::float8), %s, %s, %s::int, %s::int, %s::float8)"
)
RESET_ATTEMPTS = "UPDATE onward_jobs SET attempts = 0, resume_pending = false, cancel_requested_at = NULL WHERE id = %s"
START_NOW = (
    "UPDATE onward_jobs SET state = 'running', lease_token = gen_random_uuid()::text, worker_id = %s,"
    " lease_timeout = %s, lease_expires_at = now() + make_interval(secs => %s), started_at = now(),"
    " finished_at = NULL, attempts = attempts + 1 - resume_pending::int, progressed = false"
    f" WHERE id = %s RETURNING {CLAIM_COLUMNS}"
)

# -- reading and administration ------------------------------------------------------------
NOW = "SELECT extract(epoch FROM now())"
COUNTS = "SELECT queue, state, count(*) FROM onward_jobs GROUP BY queue, state"
# Ready jobs per queue, for the dashboard's Prometheus gauges (the partial index of waiting jobs).
READY_BY_QUEUE = (
    "SELECT queue, count(*), min(scheduled_at) FROM onward_jobs"
    " WHERE state = 'enqueued' AND held_until IS NULL AND scheduled_at <= now() GROUP BY queue"
)
FINISHED_PER_MINUTE = (
    "SELECT floor(extract(epoch FROM now() - finished_at) / 60)::int AS ago, state, count(*)"
    " FROM onward_jobs WHERE finished_at IS NOT NULL AND finished_at > now() - make_interval(secs => %s)"
    " AND finished_at <= now() AND state IN ('succeeded', 'failed', 'discarded', 'cancelled') GROUP BY ago, state"
)
STATE_KEY_QUEUE = "SELECT state, unique_key, queue FROM onward_jobs WHERE id = %s"
LIVE_WITH_KEY = "SELECT 1 FROM onward_jobs WHERE unique_key = %s AND state IN ('enqueued', 'running')"
RETRY_JOB = (
    "UPDATE onward_jobs SET state = 'enqueued', attempts = 0, resume_pending = false, cancel_requested_at = NULL,"
    " scheduled_at = now(), finished_at = NULL, held_until = NULL WHERE id = %s AND state = ANY(%s)"
)
DISCARD = (
    "WITH u AS (UPDATE onward_jobs SET state = 'discarded', finished_at = now()"
    " WHERE id = %s AND state = ANY(%s) RETURNING 1)"
    " SELECT (SELECT count(*) FROM u), EXISTS (SELECT 1 FROM onward_jobs WHERE id = %s)"
)
PURGE = (
    "DELETE FROM onward_jobs WHERE seq IN (SELECT seq FROM onward_jobs WHERE finished_at IS NOT NULL"
    " AND finished_at < to_timestamp(%s) AND state = ANY(%s) ORDER BY finished_at LIMIT %s)"
)

# A re-run of the continuations of a succeeded job whose block had raised.
SET_CONTINUATION_ERROR = (
    "UPDATE onward_jobs SET continuation_error = %s"
    " WHERE id = %s AND state = 'succeeded' AND continuation_error IS NOT NULL"
)
COUNT_CONTINUATION_FAILED = (
    "SELECT count(*) FROM onward_jobs WHERE continuation_error IS NOT NULL AND state = 'succeeded'"
)


# -- queues --------------------------------------------------------------------------------------
PAUSED_QUEUES = "SELECT name, extract(epoch FROM paused_at) FROM onward_queues WHERE paused ORDER BY name"
PAUSE_QUEUE = (
    "INSERT INTO onward_queues (name, paused, paused_at) VALUES (%s, true, now())"
    " ON CONFLICT (name) DO UPDATE SET paused = true, paused_at = coalesce(onward_queues.paused_at, now())"
)
# Resuming wakes the workers serving the queue.
RESUME_QUEUE = f"WITH d AS (DELETE FROM onward_queues WHERE name = %s) SELECT pg_notify('{CHANNEL}', %s)"
