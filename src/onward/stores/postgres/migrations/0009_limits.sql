-- Onward 9: concurrency and rate limits per limit key. A job of a class with limits carries its
-- key and its class's numbers. A ready job whose key has no room is held (held_until set: when
-- its throttle window frees, or the year 9999 while its key's concurrency is full), which takes
-- it out of the ready indexes, so held jobs cost the claim nothing however many wait. A trigger
-- gives a slot back when a job of the key stops running (whatever the path: success, failure,
-- retry, interruption, a reaped lease): the first job held for a slot is ready again.
ALTER TABLE onward_jobs ADD COLUMN limit_key text, ADD COLUMN limit_concurrency integer,
    ADD COLUMN throttle_limit integer, ADD COLUMN throttle_per double precision, ADD COLUMN held_until timestamptz;
DROP INDEX onward_jobs_ready;
DROP INDEX onward_jobs_ready_queue;
CREATE INDEX onward_jobs_ready ON onward_jobs (priority, scheduled_at, seq) INCLUDE (limit_key)
    WHERE state = 'enqueued' AND held_until IS NULL;
CREATE INDEX onward_jobs_ready_queue ON onward_jobs (queue, priority, scheduled_at, seq) INCLUDE (limit_key)
    WHERE state = 'enqueued' AND held_until IS NULL;
CREATE INDEX onward_jobs_held ON onward_jobs (limit_key, held_until, priority, scheduled_at, seq)
    WHERE state = 'enqueued' AND held_until IS NOT NULL;
CREATE INDEX onward_jobs_held_until ON onward_jobs (held_until) WHERE state = 'enqueued' AND held_until IS NOT NULL;
CREATE INDEX onward_jobs_limit_ready ON onward_jobs (limit_key, scheduled_at)
    WHERE state = 'enqueued' AND held_until IS NULL AND limit_key IS NOT NULL;
CREATE INDEX onward_jobs_limit_running ON onward_jobs (limit_key) WHERE state = 'running' AND limit_key IS NOT NULL;
CREATE TABLE onward_limit_starts (limit_key text NOT NULL, started_at timestamptz NOT NULL);
CREATE INDEX onward_limit_starts_key ON onward_limit_starts (limit_key, started_at);
CREATE TABLE onward_limit_windows (limit_key text PRIMARY KEY, longest double precision NOT NULL);
-- A job of a limited key stopped running: the first job held for a slot of its key is ready
-- again. The shared advisory lock waits for a claim deciding about the key (which holds it
-- exclusively, and never waits for it), so a hold that claim makes is seen here.
CREATE FUNCTION onward_limit_slot_freed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    freed text;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(7237240, hashtext(OLD.limit_key));
    UPDATE onward_jobs SET held_until = NULL WHERE seq = (
        SELECT seq FROM onward_jobs WHERE limit_key = OLD.limit_key AND state = 'enqueued'
        AND held_until = '9999-01-01 00:00:00+00' ORDER BY priority, scheduled_at, seq LIMIT 1) RETURNING queue INTO freed;
    IF freed IS NOT NULL THEN
        PERFORM pg_notify('onward_jobs', freed);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER onward_limit_slot_freed AFTER UPDATE OF state ON onward_jobs FOR EACH ROW
    WHEN (OLD.state = 'running' AND NEW.state <> 'running' AND OLD.limit_key IS NOT NULL)
    EXECUTE FUNCTION onward_limit_slot_freed();
