-- Onward 9: batches (fan-in). A member names its batch (batch_id); a callback names the batch
-- whose callback it is (parent_batch_id). Each batch keeps counters, moved by a trigger in the
-- very transaction that changes a member's state: completing a member is one more UPDATE of
-- one row whatever the batch's size, and jobs without a batch cost nothing (the trigger's WHEN).
-- When no member is pending any more, a second trigger copies the batch's callbacks into
-- onward_jobs (on_success once every member succeeded, on_finish once every member is final),
-- once each, in that same transaction.
ALTER TABLE onward_jobs ADD COLUMN batch_id TEXT;
ALTER TABLE onward_jobs ADD COLUMN parent_batch_id TEXT;
CREATE INDEX onward_jobs_batch ON onward_jobs (batch_id, seq) WHERE batch_id IS NOT NULL;
CREATE INDEX onward_jobs_parent_batch ON onward_jobs (parent_batch_id, seq) WHERE parent_batch_id IS NOT NULL;
CREATE TABLE onward_batches (
    id TEXT PRIMARY KEY,
    description TEXT,
    total INTEGER NOT NULL DEFAULT 0,
    pending INTEGER NOT NULL DEFAULT 0,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    discarded INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    success_done INTEGER NOT NULL DEFAULT 0,
    finish_done INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    changed_at REAL NOT NULL,
    finished_at REAL
) WITHOUT ROWID;
CREATE TABLE onward_batch_callbacks (
    batch_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    ord INTEGER NOT NULL,
    id TEXT NOT NULL,
    job_class TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    args TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    max_attempts INTEGER NOT NULL,
    max_resumptions INTEGER,
    delay REAL NOT NULL,
    run_at REAL,
    unique_key TEXT,
    trace_context TEXT,
    PRIMARY KEY (batch_id, kind, ord)
) WITHOUT ROWID;
CREATE TRIGGER onward_batch_member AFTER UPDATE OF state ON onward_jobs
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
CREATE TRIGGER onward_batch_settled AFTER UPDATE OF pending ON onward_batches
WHEN NEW.pending = 0 AND (NOT NEW.finish_done OR (NOT NEW.success_done AND NEW.succeeded = NEW.total))
BEGIN
    INSERT OR IGNORE INTO onward_jobs (id, job_class, queue, priority, args, kwargs, state, max_attempts,
        max_resumptions, scheduled_at, enqueued_at, unique_key, trace_context, parent_batch_id)
    SELECT c.id, c.job_class, c.queue, c.priority, c.args, c.kwargs, 'enqueued', c.max_attempts,
        c.max_resumptions, coalesce(c.run_at, NEW.changed_at + c.delay), NEW.changed_at, c.unique_key,
        c.trace_context, NEW.id
    FROM onward_batch_callbacks AS c
    WHERE c.batch_id = NEW.id AND ((c.kind = 'success' AND NOT NEW.success_done AND NEW.succeeded = NEW.total)
        OR (c.kind = 'finish' AND NOT NEW.finish_done))
    ORDER BY c.kind DESC, c.ord;
    UPDATE onward_batches SET success_done = success_done OR succeeded = total, finish_done = 1,
        finished_at = coalesce(finished_at, changed_at)
    WHERE id = NEW.id;
END;
