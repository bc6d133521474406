-- Onward 11: jobs without a batch and without a limit key pay nothing for batches and limits.
-- The triggers of migrations 9 and 10 fired on every change of any job's state (SQLite checks
-- a trigger's WHEN inside the trigger's own sub-program, started for every row). They now fire
-- only for statements that name batch_id or limit_key in their SET list: the store changes the
-- state of a job with a batch or a limit key through such a statement ("batch_id = batch_id,
-- limit_key = limit_key", which leaves both as they are), and the state of other jobs through
-- statements that refuse a row with either. What they do is unchanged: a batch's counters
-- move with its members' states, and when a job of a limit key stops running the first job
-- of the key held by concurrency is ready again (the WHEN now looks for one first, so a key
-- with no held job costs one index probe).
DROP TRIGGER onward_batch_member;
DROP TRIGGER onward_limit_slot_freed;
CREATE TRIGGER onward_batch_member AFTER UPDATE OF batch_id, limit_key ON onward_jobs
WHEN NEW.batch_id IS NOT NULL AND NEW.state IS NOT OLD.state
    AND (OLD.state NOT IN ('enqueued', 'running') OR NEW.state NOT IN ('enqueued', 'running'))
BEGIN
    UPDATE onward_batches SET
        pending = pending + (OLD.state NOT IN ('enqueued', 'running')) - (NEW.state NOT IN ('enqueued', 'running')),
        succeeded = succeeded + (NEW.state = 'succeeded') - (OLD.state = 'succeeded'),
        failed = failed + (NEW.state = 'failed') - (OLD.state = 'failed'),
        discarded = discarded + (NEW.state = 'discarded') - (OLD.state = 'discarded'),
        cancelled = cancelled + (NEW.state = 'cancelled') - (OLD.state = 'cancelled'),
        changed_at = coalesce(NEW.finished_at, changed_at),
        finished_at = CASE WHEN pending + (OLD.state NOT IN ('enqueued', 'running'))
            - (NEW.state NOT IN ('enqueued', 'running')) = 0 THEN coalesce(NEW.finished_at, changed_at) END
    WHERE id = NEW.batch_id;
END;
CREATE TRIGGER onward_limit_slot_freed AFTER UPDATE OF batch_id, limit_key ON onward_jobs
WHEN OLD.state = 'running' AND NEW.state <> 'running' AND OLD.limit_key IS NOT NULL
    AND EXISTS (SELECT 1 FROM onward_jobs WHERE limit_key = OLD.limit_key AND state = 'enqueued' AND held_until = 1e300)
BEGIN
    UPDATE onward_jobs SET held_until = NULL WHERE seq = (
        SELECT seq FROM onward_jobs WHERE limit_key = OLD.limit_key AND state = 'enqueued' AND held_until = 1e300
        ORDER BY priority, scheduled_at, seq LIMIT 1);
END;
