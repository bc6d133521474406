"""The SQLite schema, as numbered migrations applied on connect (tracked by ``user_version``)."""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 1: the jobs table. Times are epoch seconds (REAL); JSON columns are text.
    """
    CREATE TABLE onward_jobs (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        job_class TEXT NOT NULL,
        queue TEXT NOT NULL,
        priority INTEGER NOT NULL,
        args TEXT NOT NULL,
        kwargs TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        resumptions INTEGER NOT NULL DEFAULT 0,
        max_resumptions INTEGER,
        resume_pending INTEGER NOT NULL DEFAULT 0,
        progressed INTEGER NOT NULL DEFAULT 0,
        scheduled_at REAL NOT NULL,
        enqueued_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        error TEXT,
        continuation_error TEXT,
        parent_id TEXT,
        result TEXT,
        job_state TEXT,
        steps TEXT,
        unique_key TEXT,
        lease_token TEXT,
        lease_expires_at REAL,
        lease_timeout REAL,
        worker_id TEXT
    );
    CREATE INDEX onward_jobs_ready ON onward_jobs (priority, scheduled_at, seq) WHERE state = 'enqueued';
    CREATE INDEX onward_jobs_ready_queue ON onward_jobs (queue, priority, scheduled_at, seq)
        WHERE state = 'enqueued';
    CREATE INDEX onward_jobs_lease ON onward_jobs (lease_expires_at) WHERE state = 'running';
    CREATE INDEX onward_jobs_parent ON onward_jobs (parent_id) WHERE parent_id IS NOT NULL;
    CREATE INDEX onward_jobs_unique ON onward_jobs (unique_key, seq) WHERE unique_key IS NOT NULL;
    CREATE INDEX onward_jobs_state ON onward_jobs (state, seq);
    """,
    # 2: indexes for operators (onward.admin): listing by queue or class newest first,
    # counting per queue and state, and finding finished jobs by when they finished.
    """
    CREATE INDEX onward_jobs_queue ON onward_jobs (queue, seq);
    CREATE INDEX onward_jobs_class ON onward_jobs (job_class, seq);
    CREATE INDEX onward_jobs_queue_state ON onward_jobs (queue, state);
    CREATE INDEX onward_jobs_finished ON onward_jobs (finished_at, state) WHERE finished_at IS NOT NULL;
    """,
    # 3: no index over every row's state. Claims and completions change the state of every
    # job twice, and an index over (state, ...) or (queue, state) for all rows made each
    # change cost more as the table grew (a third of a claim's cost with a million queued
    # jobs). Finished jobs, which never change again, keep indexes by state; waiting jobs
    # get one by age; running jobs are few and found through the lease index.
    """
    DROP INDEX onward_jobs_state;
    DROP INDEX onward_jobs_queue_state;
    CREATE INDEX onward_jobs_done ON onward_jobs (state, seq) WHERE state IN ('succeeded', 'failed', 'discarded');
    CREATE INDEX onward_jobs_done_queue ON onward_jobs (queue, state)
        WHERE state IN ('succeeded', 'failed', 'discarded');
    CREATE INDEX onward_jobs_waiting ON onward_jobs (seq) WHERE state = 'enqueued';
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the file's schema to ``SCHEMA_VERSION``; safe when processes connect at once."""
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"the file has schema version {version}, newer than this Onward ({SCHEMA_VERSION}); upgrade Onward"
            )
        for number in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[number].split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
