-- Onward 5: schedules (periodic jobs). A job enqueued by a schedule names it and its tick.
-- Each schedule keeps the tick up to which every tick was dealt with (ticked_through); each
-- tick is recorded once per schedule, in the transaction that inserts its job.
ALTER TABLE onward_jobs ADD COLUMN schedule_key text;
ALTER TABLE onward_jobs ADD COLUMN scheduled_for timestamptz;
CREATE INDEX onward_jobs_schedule ON onward_jobs (schedule_key, seq) WHERE schedule_key IS NOT NULL;
CREATE TABLE onward_schedules (
    key text PRIMARY KEY,
    job_class text NOT NULL,
    cron text,
    every double precision,
    timezone text NOT NULL,
    settings text NOT NULL,
    first_seen timestamptz NOT NULL,
    ticked_through timestamptz NOT NULL,
    last_tick timestamptz,
    last_tick_skipped boolean NOT NULL DEFAULT false,
    last_job_id text COLLATE "C",
    paused boolean NOT NULL DEFAULT false,
    paused_at timestamptz,
    declared_at timestamptz,
    declared_by text
);
CREATE TABLE onward_schedule_ticks (
    schedule_key text NOT NULL,
    tick timestamptz NOT NULL,
    job_id text COLLATE "C",
    skipped text,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_key, tick)
);
