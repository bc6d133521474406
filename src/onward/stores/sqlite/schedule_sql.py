"""SQL of schedules on the SQLite store (see ``schedules.py`` beside it)."""

from __future__ import annotations

from functools import lru_cache

from onward.stores.sqlite.sql import INSERT

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
PRUNE_TICKS = "DELETE FROM onward_schedule_ticks WHERE schedule_key = ? AND tick < ?"
_INSERT_HEAD, _INSERT_ROW = INSERT.split(" VALUES ")


@lru_cache(maxsize=16)
def schedules_for_ticks_sql(keys: int) -> str:
    """Each schedule's state and whether its latest job is enqueued or running."""
    return (
        "SELECT s.key, s.ticked_through, s.paused, j.state IN ('enqueued', 'running') FROM onward_schedules AS s"
        f" LEFT JOIN onward_jobs AS j ON j.id = s.last_job_id WHERE s.key IN ({', '.join('?' * keys)})"
    )


@lru_cache(maxsize=32)
def move_on_sql(rows: int) -> str:
    """Move schedules on as their plans expect, each only if it is still where its plan
    started, not paused, and (without ``overlap``) its latest job is not enqueued or running:
    (key, after, through, last_tick, last_job_id, overlap) rows."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)
    return (
        "UPDATE onward_schedules SET ticked_through = v.column3, last_tick = coalesce(v.column4, last_tick),"
        " last_tick_skipped = CASE WHEN v.column4 IS NULL THEN last_tick_skipped ELSE 0 END,"
        " last_job_id = coalesce(v.column5, last_job_id)"
        f" FROM (VALUES {values}) AS v WHERE onward_schedules.key = v.column1"
        " AND onward_schedules.ticked_through = v.column2 AND NOT onward_schedules.paused"
        " AND (v.column6 OR NOT EXISTS (SELECT 1 FROM onward_jobs AS j WHERE j.id = onward_schedules.last_job_id"
        " AND j.state IN ('enqueued', 'running')))"
    )


@lru_cache(maxsize=16)
def insert_ticks_sql(rows: int) -> str:
    """Record ticks that inserted no job of their own: (key, tick, job_id, skipped, recorded_at) rows."""
    values = ", ".join(["(?, ?, ?, ?, ?)"] * rows)
    return (
        "INSERT OR IGNORE INTO onward_schedule_ticks (schedule_key, tick, job_id, skipped, recorded_at)"
        f" VALUES {values}"
    )


@lru_cache(maxsize=32)
def insert_bound_sql(bound: tuple[bool, ...], rows: int) -> str:
    """:data:`INSERT` for ``rows`` jobs whose parameters not marked in ``bound`` are ``None``,
    written as ``NULL`` (binding ``None`` costs the driver far more than an int or a str)."""
    parts = _INSERT_ROW.split("?")
    row = parts[0] + "".join(("?" if bind else "NULL") + rest for bind, rest in zip(bound, parts[1:], strict=True))
    return f"{_INSERT_HEAD} VALUES " + ", ".join([row] * rows)


@lru_cache(maxsize=32)
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
