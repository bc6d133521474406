"""SQL of schedules on the PostgreSQL store (see ``schedules.py`` beside it)."""

from __future__ import annotations

from onward.stores.postgres.sql import _ARRAYS, _CARRIED, _INSERT_COLUMNS, CHANNEL

# Rows travel as one JSON array; times as ISO text or as epoch seconds (``to_timestamp``: the
# same microsecond as the ISO text of the same float), so a tick is stored to the microsecond
# the scheduler computed. Schedules are locked in key order (no deadlock between
# workers declaring or ticking the same schedules).
# One statement: the stored state and the declaration found before (``old``: the snapshot the
# statement started from), and the upsert, which writes nothing when the settings are the same
# and no worker declares the schedule.
DECLARE_SCHEDULES = (
    "WITH d AS (SELECT e->>0 AS key, e->>1 AS job_class, e->>2 AS cron, (e->>3)::float8 AS every,"
    " e->>4 AS timezone, e->>5 AS settings FROM jsonb_array_elements(%s::jsonb) AS e),"
    " b AS (SELECT coalesce(%s::timestamptz, now()) AS first,"
    " CASE WHEN %s::text IS NULL THEN NULL ELSE now() END AS at),"
    " old AS (SELECT key, ticked_through, paused, declared_at, declared_by FROM onward_schedules"
    " WHERE key IN (SELECT key FROM d)),"
    " up AS (INSERT INTO onward_schedules AS s (key, job_class, cron, every, timezone, settings, first_seen,"
    " ticked_through, declared_at, declared_by) SELECT d.key, d.job_class, d.cron, d.every, d.timezone, d.settings,"
    " b.first, b.first, b.at, %s FROM d CROSS JOIN b ORDER BY d.key"
    " ON CONFLICT (key) DO UPDATE SET job_class = excluded.job_class, cron = excluded.cron, every = excluded.every,"
    " timezone = excluded.timezone, settings = excluded.settings,"
    " declared_at = coalesce(excluded.declared_at, s.declared_at),"
    " declared_by = coalesce(excluded.declared_by, s.declared_by)"
    " WHERE excluded.declared_at IS NOT NULL OR (s.job_class, s.cron, s.every, s.timezone, s.settings)"
    " IS DISTINCT FROM (excluded.job_class, excluded.cron, excluded.every, excluded.timezone, excluded.settings)"
    " RETURNING key, ticked_through, paused)"
    " SELECT d.key, coalesce(old.ticked_through, up.ticked_through), coalesce(old.paused, up.paused),"
    " old.declared_at, old.declared_by FROM d LEFT JOIN old ON old.key = d.key LEFT JOIN up ON up.key = d.key"
)
UNDECLARE = (
    "UPDATE onward_schedules SET declared_at = NULL, declared_by = NULL WHERE key = ANY(%s) AND declared_by = %s"
)
LOCK_SCHEDULES = (
    "SELECT s.key, s.ticked_through, s.paused, coalesce(j.state IN ('enqueued', 'running'), false)"
    " FROM onward_schedules AS s LEFT JOIN onward_jobs AS j ON j.id = s.last_job_id"
    " WHERE s.key = ANY(%s) ORDER BY s.key FOR UPDATE OF s"
)
# Each tick once per schedule: the ordinal of every tick that was new.
INSERT_TICKS = (
    'WITH t AS (SELECT e->>0 AS key, (e->>1)::timestamptz AS tick, (e->>2) COLLATE "C" AS job_id, e->>3 AS skipped,'
    " ord FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS r(e, ord)),"
    " ins AS (INSERT INTO onward_schedule_ticks (schedule_key, tick, job_id, skipped)"
    " SELECT key, tick, job_id, skipped FROM t ON CONFLICT DO NOTHING RETURNING schedule_key, tick)"
    " SELECT t.ord FROM t JOIN ins ON ins.schedule_key = t.key AND ins.tick = t.tick"
)
# All the plans of a scheduler's pass in one statement, then ``TICKED`` in the same transaction:
# ``p`` the plans, ``s`` their schedules locked in key order with whether each one's latest job
# is enqueued or running, ``ok`` the plans that apply (not paused, still at the plan's
# ``after``); each of their ticks is recorded once (``ON CONFLICT DO NOTHING``), as skipped when
# ``overlap`` is false and the latest job is in the way, and only the jobs of the ticks recorded
# here are inserted (their ids are new: a tick row holds the id of the job inserted with it).
# Returned: kind 0 rows, each schedule's state as locked; kind 1 rows, the ordinal
# of every tick recorded here; kind 2 rows, one per queue notified. Parameters: the plans,
# the ticks and the jobs (``inserts.job_rows``), each a JSON array.
RECORD_TICKS = (
    "WITH p AS (SELECT e->>0 AS key, to_timestamp((e->>1)::float8) AS after, to_timestamp((e->>2)::float8) AS through,"
    " (e->>3)::boolean AS overlap FROM jsonb_array_elements(%s::jsonb) AS e),"
    " s AS MATERIALIZED (SELECT s.key, s.ticked_through, s.paused,"
    " coalesce(j.state IN ('enqueued', 'running'), false) AS live"
    " FROM onward_schedules AS s LEFT JOIN onward_jobs AS j ON j.id = s.last_job_id"
    " WHERE s.key IN (SELECT key FROM p) ORDER BY s.key FOR UPDATE OF s),"
    " ok AS MATERIALIZED (SELECT p.key, p.through, s.live AND NOT p.overlap AS skip"
    " FROM p JOIN s ON s.key = p.key WHERE NOT s.paused AND s.ticked_through = p.after),"
    ' t AS MATERIALIZED (SELECT e->>0 AS key, to_timestamp((e->>1)::float8) AS tick, (e->>2) COLLATE "C" AS job_id, ord'
    " FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS r(e, ord)),"
    " ins AS (INSERT INTO onward_schedule_ticks (schedule_key, tick, job_id, skipped)"
    " SELECT t.key, t.tick, CASE WHEN ok.skip THEN NULL ELSE t.job_id END, CASE WHEN ok.skip THEN 'overlap' END"
    " FROM t JOIN ok ON ok.key = t.key ORDER BY t.ord ON CONFLICT DO NOTHING RETURNING schedule_key, tick, job_id),"
    f" new AS ({_INSERT_COLUMNS} SELECT c.id, c.job_class, c.queue, c.priority, c.args, c.kwargs, 'enqueued',"
    " c.max_attempts, c.max_resumptions, coalesce(to_timestamp(c.run_at), now() + make_interval(secs => c.delay)),"
    f" now(), NULL, {_CARRIED}, NULL FROM {_ARRAYS}"
    ' WHERE c.id COLLATE "C" IN (SELECT job_id FROM ins) ORDER BY c.ord RETURNING queue)'
    " SELECT 0, s.key, s.ticked_through, s.paused, s.live, NULL::bigint FROM s"
    " UNION ALL SELECT 1, NULL, NULL, NULL, NULL, t.ord"
    " FROM t JOIN ins ON ins.schedule_key = t.key AND ins.tick = t.tick"
    " UNION ALL SELECT 2, NULL, NULL, NULL, NULL, NULL"
    f" FROM (SELECT pg_notify('{CHANNEL}', queue) FROM (SELECT DISTINCT queue FROM new) AS q) AS n"
)
# Tick records older than each schedule's ``keep_since`` go: an index scan per schedule.
PRUNE_TICKS = (
    "DELETE FROM onward_schedule_ticks WHERE ctid = ANY(ARRAY(SELECT x.ctid FROM jsonb_array_elements(%s::jsonb) AS e"
    " CROSS JOIN LATERAL (SELECT d.ctid FROM onward_schedule_ticks AS d WHERE d.schedule_key = e->>0"
    " AND d.tick < (e->>1)::timestamptz) AS x))"
)
SET_TICK_JOB = "UPDATE onward_schedule_ticks SET job_id = %s WHERE schedule_key = %s AND tick = %s::timestamptz"
TICKED = (
    "WITH u AS (SELECT e->>0 AS key, to_timestamp((e->>1)::float8) AS through,"
    " to_timestamp((e->>2)::float8) AS last_tick,"
    ' (e->>3)::boolean AS skipped, (e->>4) COLLATE "C" AS last_job FROM jsonb_array_elements(%s::jsonb) AS e)'
    " UPDATE onward_schedules AS s SET ticked_through = u.through, last_tick = coalesce(u.last_tick, s.last_tick),"
    " last_tick_skipped = coalesce(u.skipped, s.last_tick_skipped), last_job_id = coalesce(u.last_job, s.last_job_id)"
    " FROM u WHERE s.key = u.key"
)
LIST_SCHEDULES = (
    "SELECT s.*, j.state AS last_job_state FROM onward_schedules AS s"
    " LEFT JOIN onward_jobs AS j ON j.id = s.last_job_id ORDER BY s.key"
)
PAUSE_SCHEDULE = "UPDATE onward_schedules SET paused = true, paused_at = coalesce(paused_at, now()) WHERE key = %s"
# Resuming starts again from now: the ticks of the paused time are not caught up.
RESUME_SCHEDULE = (
    "UPDATE onward_schedules SET ticked_through = CASE WHEN paused THEN greatest(ticked_through, now())"
    " ELSE ticked_through END, paused = false, paused_at = NULL WHERE key = %s"
)
