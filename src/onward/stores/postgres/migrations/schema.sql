-- The current Onward schema, applied in one go to a new database. An existing database is
-- brought to the same schema by the numbered migrations beside this file (a test checks
-- that both give the same catalog). When the schema changes, add a migration AND update
-- this file.
CREATE TABLE onward_jobs (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text COLLATE "C" NOT NULL UNIQUE,
    job_class text NOT NULL,
    queue text NOT NULL,
    priority integer NOT NULL,
    args text NOT NULL,
    kwargs text NOT NULL,
    state text NOT NULL CHECK (state IN ('enqueued', 'running', 'succeeded', 'failed', 'discarded', 'cancelled')),
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    resumptions integer NOT NULL DEFAULT 0,
    max_resumptions integer,
    resume_pending boolean NOT NULL DEFAULT false,
    progressed boolean NOT NULL DEFAULT false,
    scheduled_at timestamptz NOT NULL,
    enqueued_at timestamptz NOT NULL,
    started_at timestamptz,
    finished_at timestamptz,
    error text,
    continuation_error text,
    parent_id text,
    result text,
    job_state text,
    steps text,
    unique_key text,
    lease_token text,
    lease_expires_at timestamptz,
    lease_timeout double precision,
    worker_id text,
    trace_context text,
    schedule_key text,
    scheduled_for timestamptz,
    cancel_requested_at timestamptz,
    run_timeout double precision,
    batch_id text COLLATE "C",
    parent_batch_id text COLLATE "C",
    limit_key text,
    limit_concurrency integer,
    throttle_limit integer,
    throttle_per double precision,
    held_until timestamptz
);

-- Ready jobs, in claim order (workers claim with FOR UPDATE SKIP LOCKED off these); jobs held
-- back by their limits are not in them.
-- Running jobs by lease expiry, for the reaper.
CREATE INDEX onward_jobs_lease ON onward_jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX onward_jobs_parent ON onward_jobs (parent_id, seq) WHERE parent_id IS NOT NULL;
-- The latest job of a unique key, and at most one live (enqueued or running) job per key.
CREATE INDEX onward_jobs_unique ON onward_jobs (unique_key, seq) WHERE unique_key IS NOT NULL;
CREATE UNIQUE INDEX onward_jobs_unique_live ON onward_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('enqueued', 'running');
CREATE INDEX onward_jobs_state ON onward_jobs (state, seq);
-- Enqueued jobs by schedule: when an idle worker should look again.
CREATE INDEX onward_jobs_due ON onward_jobs (scheduled_at) WHERE state = 'enqueued';
CREATE INDEX onward_jobs_queue ON onward_jobs (queue, seq);
CREATE INDEX onward_jobs_class ON onward_jobs (job_class, seq);
CREATE INDEX onward_jobs_queue_state ON onward_jobs (queue, state);
CREATE INDEX onward_jobs_finished ON onward_jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX onward_jobs_continuation_error ON onward_jobs (seq) WHERE continuation_error IS NOT NULL;
CREATE INDEX onward_jobs_schedule ON onward_jobs (schedule_key, seq) WHERE schedule_key IS NOT NULL;
CREATE INDEX onward_jobs_batch ON onward_jobs (batch_id, seq) WHERE batch_id IS NOT NULL;
CREATE INDEX onward_jobs_parent_batch ON onward_jobs (parent_batch_id, seq) WHERE parent_batch_id IS NOT NULL;

-- Schedules (periodic jobs): each keeps the tick up to which every tick was dealt with; each
-- tick is recorded once per schedule, in the transaction that inserts its job.
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

-- Queues an operator paused: no worker claims from them (enqueueing goes on).
CREATE TABLE onward_queues (
    name text PRIMARY KEY,
    paused boolean NOT NULL DEFAULT false,
    paused_at timestamptz
);
-- Batches (fan-in): counters moved by a trigger in each member's state change; callbacks
-- inserted once each by a second trigger when no member is pending.
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
-- Concurrency and rate limits per limit key (held jobs, slots given back, throttle starts).
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
-- again (SKIP LOCKED: when two jobs of the key stop at once, each gives back a different one).
-- The shared advisory lock waits for a claim deciding about the key (which holds it
-- exclusively, and never waits for it), so a hold that claim makes is seen here.
CREATE FUNCTION onward_limit_slot_freed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    freed text;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(7237240, hashtext(OLD.limit_key));
    UPDATE onward_jobs SET held_until = NULL WHERE seq = (
        SELECT seq FROM onward_jobs WHERE limit_key = OLD.limit_key AND state = 'enqueued'
        AND held_until = '9999-01-01 00:00:00+00' ORDER BY priority, scheduled_at, seq LIMIT 1
        FOR UPDATE SKIP LOCKED) RETURNING queue INTO freed;
    IF freed IS NOT NULL THEN
        PERFORM pg_notify('onward_jobs', freed);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER onward_limit_slot_freed AFTER UPDATE OF state ON onward_jobs FOR EACH ROW
    WHEN (OLD.state = 'running' AND NEW.state <> 'running' AND OLD.limit_key IS NOT NULL)
    EXECUTE FUNCTION onward_limit_slot_freed();

-- Claim up to p_wanted ready jobs with their limits applied, jobs without limits among them too
-- (a worker calls it instead of the claim statement while its queues have jobs with limits). It
-- reads the first ready jobs in claim order a page at a time, each page in a few statements
-- whatever its size: the page's rows locked (SKIP LOCKED) with the locks of its new limit keys
-- tried (never waited for: a key another claim is deciding about is passed over), then the
-- running jobs of the keys locked counted (a statement of its own, so it sees what was committed
-- before the lock was taken); then, in claim order, a job without limits is claimed, a job of a
-- key with room is claimed, and when its key is full the key's ready jobs are held.
CREATE FUNCTION onward_claim_limited(p_worker text, p_queues text[], p_lease double precision, p_wanted integer)
RETURNS SETOF onward_jobs LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_page integer := p_wanted + 8;
    v_scanned integer := 0;
    v_chosen bigint[] := '{}';
    v_keys text[] := '{}';
    v_used integer[] := '{}';
    v_skipped text[] := '{}';
    v_throttled text[] := '{}';
    v_windows double precision[] := '{}';
    v_new text[];
    v_busy text[];
    c_seq bigint[];
    c_key text[];
    c_conc integer[];
    c_tlimit integer[];
    c_tper double precision[];
    c_prio integer[];
    c_at timestamptz[];
    v_after boolean := false;
    v_prio integer;
    v_at timestamptz;
    v_seq bigint;
    v_count integer;
    v_free timestamptz;
    n integer;
    v_pos integer;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE onward_jobs SET held_until = NULL WHERE state = 'enqueued' AND held_until <= v_now;
    LOOP
        WITH c AS MATERIALIZED (SELECT j.seq, j.limit_key, j.limit_concurrency, j.throttle_limit, j.throttle_per,
                j.priority, j.scheduled_at FROM onward_jobs AS j
            WHERE j.state = 'enqueued' AND j.held_until IS NULL AND j.scheduled_at <= v_now
            AND (p_queues IS NULL OR j.queue = ANY(p_queues))
            AND j.queue NOT IN (SELECT name FROM onward_queues WHERE paused)
            AND (NOT v_after OR (j.priority, j.scheduled_at, j.seq) > (v_prio, v_at, v_seq))
            ORDER BY j.priority, j.scheduled_at, j.seq LIMIT v_page FOR UPDATE SKIP LOCKED),
        tried AS MATERIALIZED (SELECT d.key, pg_try_advisory_xact_lock(7237240, hashtext(d.key)) AS locked
            FROM (SELECT DISTINCT c.limit_key AS key FROM c WHERE c.limit_key IS NOT NULL) AS d
            WHERE d.key <> ALL(v_keys) AND d.key <> ALL(v_skipped))
        SELECT array_agg(c.seq ORDER BY c.priority, c.scheduled_at, c.seq),
            array_agg(c.limit_key ORDER BY c.priority, c.scheduled_at, c.seq),
            array_agg(c.limit_concurrency ORDER BY c.priority, c.scheduled_at, c.seq),
            array_agg(c.throttle_limit ORDER BY c.priority, c.scheduled_at, c.seq),
            array_agg(c.throttle_per ORDER BY c.priority, c.scheduled_at, c.seq),
            array_agg(c.priority ORDER BY c.priority, c.scheduled_at, c.seq),
            array_agg(c.scheduled_at ORDER BY c.priority, c.scheduled_at, c.seq),
            (SELECT coalesce(array_agg(tried.key) FILTER (WHERE tried.locked), '{}') FROM tried),
            (SELECT coalesce(array_agg(tried.key) FILTER (WHERE NOT tried.locked), '{}') FROM tried)
            INTO c_seq, c_key, c_conc, c_tlimit, c_tper, c_prio, c_at, v_new, v_busy FROM c;
        n := coalesce(cardinality(c_seq), 0);
        EXIT WHEN n = 0;
        v_scanned := v_scanned + n;
        v_skipped := v_skipped || v_busy;
        IF cardinality(v_new) > 0 THEN
            v_keys := v_keys || v_new;
            v_used := v_used || ARRAY(SELECT (SELECT count(*) FROM onward_jobs AS j
                WHERE j.state = 'running' AND j.limit_key = u.key)::integer
                FROM unnest(v_new) WITH ORDINALITY AS u(key, o) ORDER BY u.o);
        END IF;
        FOR i IN 1..n LOOP
            IF c_key[i] IS NULL THEN
                v_chosen := v_chosen || c_seq[i];
            ELSIF c_key[i] = ANY(v_skipped) THEN
                CONTINUE;
            ELSE
                v_pos := array_position(v_keys, c_key[i]);
                IF c_conc[i] IS NOT NULL AND v_used[v_pos] >= c_conc[i] THEN
                    v_count := v_used[v_pos];
                    UPDATE onward_jobs SET held_until = '9999-01-01 00:00:00+00' WHERE seq IN (
                        SELECT seq FROM onward_jobs WHERE limit_key = c_key[i] AND state = 'enqueued'
                        AND held_until IS NULL AND scheduled_at <= v_now AND limit_concurrency <= v_count
                        FOR UPDATE SKIP LOCKED);
                    v_skipped := v_skipped || c_key[i];
                    CONTINUE;
                END IF;
                IF c_tlimit[i] IS NOT NULL THEN
                    SELECT count(*) + cardinality(array_positions(v_throttled, c_key[i])) INTO v_count
                        FROM onward_limit_starts
                        WHERE limit_key = c_key[i] AND started_at > v_now - make_interval(secs => c_tper[i]);
                    IF v_count >= c_tlimit[i] THEN
                        SELECT started_at + make_interval(secs => c_tper[i]) INTO v_free FROM onward_limit_starts
                            WHERE limit_key = c_key[i] AND started_at > v_now - make_interval(secs => c_tper[i])
                            ORDER BY started_at OFFSET v_count - c_tlimit[i] LIMIT 1;
                        UPDATE onward_jobs SET held_until = coalesce(v_free, v_now + make_interval(secs => c_tper[i]))
                            WHERE seq IN (SELECT seq FROM onward_jobs WHERE limit_key = c_key[i]
                            AND state = 'enqueued' AND held_until IS NULL AND scheduled_at <= v_now
                            AND throttle_per = c_tper[i] AND throttle_limit <= v_count FOR UPDATE SKIP LOCKED);
                        v_skipped := v_skipped || c_key[i];
                        CONTINUE;
                    END IF;
                    v_throttled := v_throttled || c_key[i];
                    v_windows := v_windows || c_tper[i];
                END IF;
                v_chosen := v_chosen || c_seq[i];
                v_used[v_pos] := v_used[v_pos] + 1;
            END IF;
            EXIT WHEN cardinality(v_chosen) >= p_wanted;
        END LOOP;
        EXIT WHEN cardinality(v_chosen) >= p_wanted OR n < v_page OR v_scanned >= 2000;
        v_after := true;
        v_prio := c_prio[n];
        v_at := c_at[n];
        v_seq := c_seq[n];
        v_page := least(2 * v_page, 2000 - v_scanned);
    END LOOP;
    IF cardinality(v_throttled) > 0 THEN
        INSERT INTO onward_limit_starts (limit_key, started_at) SELECT unnest(v_throttled), v_now;
        WITH w AS (INSERT INTO onward_limit_windows AS w (limit_key, longest)
            SELECT t.k, max(t.p) FROM unnest(v_throttled, v_windows) AS t(k, p) GROUP BY t.k ORDER BY t.k
            ON CONFLICT (limit_key) DO UPDATE SET longest = greatest(w.longest, excluded.longest)
            RETURNING w.limit_key, w.longest)
        DELETE FROM onward_limit_starts AS s USING w
            WHERE s.limit_key = w.limit_key AND s.started_at <= v_now - make_interval(secs => w.longest);
    END IF;
    RETURN QUERY UPDATE onward_jobs SET state = 'running', lease_token = gen_random_uuid()::text, worker_id = p_worker,
        lease_timeout = p_lease, lease_expires_at = v_now + make_interval(secs => p_lease), started_at = v_now,
        attempts = attempts + 1 - resume_pending::int, progressed = false, held_until = NULL
        WHERE seq = ANY(v_chosen) AND state = 'enqueued' RETURNING *;
END
$$;
