-- Onward 6: schedules (periodic jobs). A job enqueued by a schedule names it and its tick.
-- Each schedule keeps the tick up to which every tick was dealt with (ticked_through); each
-- tick is recorded once per schedule, in the transaction that inserts its job.
ALTER TABLE onward_jobs ADD COLUMN schedule_key TEXT;
ALTER TABLE onward_jobs ADD COLUMN scheduled_for REAL;
CREATE INDEX onward_jobs_schedule ON onward_jobs (schedule_key, seq) WHERE schedule_key IS NOT NULL;
CREATE TABLE onward_schedules (
    key TEXT PRIMARY KEY,
    job_class TEXT NOT NULL,
    cron TEXT,
    every REAL,
    timezone TEXT NOT NULL,
    settings TEXT NOT NULL,
    first_seen REAL NOT NULL,
    ticked_through REAL NOT NULL,
    last_tick REAL,
    last_tick_skipped INTEGER NOT NULL DEFAULT 0,
    last_job_id TEXT,
    paused INTEGER NOT NULL DEFAULT 0,
    paused_at REAL,
    declared_at REAL,
    declared_by TEXT
);
CREATE TABLE onward_schedule_ticks (
    schedule_key TEXT NOT NULL,
    tick REAL NOT NULL,
    job_id TEXT,
    skipped TEXT,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (schedule_key, tick)
) WITHOUT ROWID;
