-- Onward 10: concurrency and rate limits per limit key. A job of a class with limits carries its
-- key and its class's numbers. A ready job whose key has no room is held (held_until set: the
-- time its throttle window frees, or 1e300 while its key's concurrency is full), which takes it
-- out of the ready indexes, so held jobs cost the claim nothing however many wait. A trigger
-- gives a slot back when a job of the key stops running (whatever the path: success, failure,
-- retry, interruption, a reaped lease): the first job held by concurrency is ready again.
ALTER TABLE onward_jobs ADD COLUMN limit_key TEXT;
ALTER TABLE onward_jobs ADD COLUMN limit_concurrency INTEGER;
ALTER TABLE onward_jobs ADD COLUMN throttle_limit INTEGER;
ALTER TABLE onward_jobs ADD COLUMN throttle_per REAL;
ALTER TABLE onward_jobs ADD COLUMN held_until REAL;
DROP INDEX onward_jobs_ready;
DROP INDEX onward_jobs_ready_queue;
CREATE INDEX onward_jobs_ready ON onward_jobs (priority, scheduled_at, seq, limit_key)
    WHERE state = 'enqueued' AND held_until IS NULL;
CREATE INDEX onward_jobs_ready_queue ON onward_jobs (queue, priority, scheduled_at, seq, limit_key)
    WHERE state = 'enqueued' AND held_until IS NULL;
CREATE INDEX onward_jobs_held ON onward_jobs (limit_key, held_until, priority, scheduled_at, seq)
    WHERE state = 'enqueued' AND held_until IS NOT NULL;
CREATE INDEX onward_jobs_held_until ON onward_jobs (held_until) WHERE state = 'enqueued' AND held_until IS NOT NULL;
CREATE INDEX onward_jobs_limit_ready ON onward_jobs (limit_key, scheduled_at)
    WHERE state = 'enqueued' AND held_until IS NULL AND limit_key IS NOT NULL;
CREATE INDEX onward_jobs_limit_running ON onward_jobs (limit_key) WHERE state = 'running' AND limit_key IS NOT NULL;
CREATE TABLE onward_limit_starts (limit_key TEXT NOT NULL, started_at REAL NOT NULL);
CREATE INDEX onward_limit_starts_key ON onward_limit_starts (limit_key, started_at);
CREATE TABLE onward_limit_windows (limit_key TEXT PRIMARY KEY, longest REAL NOT NULL) WITHOUT ROWID;
CREATE TRIGGER onward_limit_slot_freed AFTER UPDATE OF state ON onward_jobs
    WHEN OLD.state = 'running' AND NEW.state <> 'running' AND OLD.limit_key IS NOT NULL
BEGIN
    UPDATE onward_jobs SET held_until = NULL WHERE seq = (
        SELECT seq FROM onward_jobs WHERE limit_key = OLD.limit_key AND state = 'enqueued' AND held_until = 1e300
        ORDER BY priority, scheduled_at, seq LIMIT 1);
END;
