-- Onward 8: batches (fan-in). A member names its batch (batch_id); a callback names the batch
-- whose callback it is (parent_batch_id). Each batch keeps counters, moved by a trigger in the
-- very transaction that changes a member's state: completing a member is one more UPDATE of
-- one row whatever the batch's size, and jobs without a batch cost nothing (the trigger's WHEN).
-- When no member is pending any more, a second trigger inserts the batch's callbacks into
-- onward_jobs (on_success once every member succeeded, on_finish once every member is final),
-- once each, in that same transaction.
ALTER TABLE onward_jobs ADD COLUMN batch_id text COLLATE "C";
ALTER TABLE onward_jobs ADD COLUMN parent_batch_id text COLLATE "C";
CREATE INDEX onward_jobs_batch ON onward_jobs (batch_id, seq) WHERE batch_id IS NOT NULL;
CREATE INDEX onward_jobs_parent_batch ON onward_jobs (parent_batch_id, seq) WHERE parent_batch_id IS NOT NULL;
CREATE TABLE onward_batches (
    id text COLLATE "C" PRIMARY KEY,
    description text,
    total integer NOT NULL DEFAULT 0,
    pending integer NOT NULL DEFAULT 0,
    succeeded integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    discarded integer NOT NULL DEFAULT 0,
    cancelled integer NOT NULL DEFAULT 0,
    success_done boolean NOT NULL DEFAULT false,
    finish_done boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    finished_at timestamptz
);
CREATE TABLE onward_batch_callbacks (
    batch_id text COLLATE "C" NOT NULL,
    kind text NOT NULL,
    ord integer NOT NULL,
    id text COLLATE "C" NOT NULL,
    job_class text NOT NULL,
    queue text NOT NULL,
    priority integer NOT NULL,
    args text NOT NULL,
    kwargs text NOT NULL,
    max_attempts integer NOT NULL,
    max_resumptions integer,
    delay double precision NOT NULL,
    run_at double precision,
    unique_key text,
    trace_context text,
    PRIMARY KEY (batch_id, kind, ord)
);
-- A member's state change moves its batch's counters: one UPDATE of one row.
CREATE FUNCTION onward_batch_member() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_final integer := (OLD.state NOT IN ('enqueued', 'running'))::integer;
    is_final integer := (NEW.state NOT IN ('enqueued', 'running'))::integer;
BEGIN
    IF was_final = 0 AND is_final = 0 THEN
        RETURN NULL;
    END IF;
    UPDATE onward_batches SET
        pending = pending + was_final - is_final,
        succeeded = succeeded + (NEW.state = 'succeeded')::integer - (OLD.state = 'succeeded')::integer,
        failed = failed + (NEW.state = 'failed')::integer - (OLD.state = 'failed')::integer,
        discarded = discarded + (NEW.state = 'discarded')::integer - (OLD.state = 'discarded')::integer,
        cancelled = cancelled + (NEW.state = 'cancelled')::integer - (OLD.state = 'cancelled')::integer
    WHERE id = NEW.batch_id;
    RETURN NULL;
END $$;
CREATE TRIGGER onward_batch_member AFTER UPDATE OF state ON onward_jobs FOR EACH ROW
    WHEN (NEW.batch_id IS NOT NULL AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION onward_batch_member();
-- When no member is pending any more: the callbacks due, once each, in the same transaction.
CREATE FUNCTION onward_batch_settled() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    on_success boolean;
    on_finish boolean;
BEGIN
    IF NEW.pending > 0 THEN
        NEW.finished_at := NULL;
        RETURN NEW;
    END IF;
    NEW.finished_at := coalesce(NEW.finished_at, now());
    on_success := NOT NEW.success_done AND NEW.succeeded = NEW.total;
    on_finish := NOT NEW.finish_done;
    IF on_success OR on_finish THEN
        INSERT INTO onward_jobs (id, job_class, queue, priority, args, kwargs, state, max_attempts,
            max_resumptions, scheduled_at, enqueued_at, unique_key, trace_context, parent_batch_id)
        SELECT c.id, c.job_class, c.queue, c.priority, c.args, c.kwargs, 'enqueued', c.max_attempts,
            c.max_resumptions, coalesce(to_timestamp(c.run_at), now() + make_interval(secs => c.delay)), now(),
            c.unique_key, c.trace_context, NEW.id
        FROM onward_batch_callbacks AS c
        WHERE c.batch_id = NEW.id AND ((c.kind = 'success' AND on_success) OR (c.kind = 'finish' AND on_finish))
        ORDER BY c.kind DESC, c.ord
        ON CONFLICT DO NOTHING;
        PERFORM pg_notify('onward_jobs', q.queue) FROM (SELECT DISTINCT c.queue FROM onward_batch_callbacks AS c
            WHERE c.batch_id = NEW.id AND ((c.kind = 'success' AND on_success) OR (c.kind = 'finish' AND on_finish))) AS q;
        NEW.success_done := NEW.success_done OR on_success;
        NEW.finish_done := true;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER onward_batch_settled BEFORE UPDATE ON onward_batches FOR EACH ROW
    EXECUTE FUNCTION onward_batch_settled();
