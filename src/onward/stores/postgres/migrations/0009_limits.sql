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

-- Claim up to p_wanted ready jobs with their limits applied (the claim statement takes the jobs
-- without limits): in claim order, a job without limits is claimed; for a job with a limit key,
-- the key's lock is tried (never waited for: a key another claim is deciding about is passed
-- over), then its running jobs and recent starts are counted (each statement sees what was
-- committed before the lock was taken) and the job is claimed, or the key's ready jobs are held.
CREATE FUNCTION onward_claim_limited(p_worker text, p_queues text[], p_lease double precision, p_wanted integer)
RETURNS SETOF onward_jobs LANGUAGE plpgsql AS $$
DECLARE
    v_now timestamptz := clock_timestamp();
    v_chosen bigint[] := '{}';
    v_chosen_keys text[] := '{}';
    v_throttled text[] := '{}';
    v_windows double precision[] := '{}';
    v_locked text[] := '{}';
    v_skipped text[] := '{}';
    v_count integer;
    v_free timestamptz;
    r record;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE onward_jobs SET held_until = NULL WHERE state = 'enqueued' AND held_until <= v_now;
    FOR r IN SELECT j.seq, j.limit_key, j.limit_concurrency, j.throttle_limit, j.throttle_per FROM onward_jobs AS j
        WHERE j.state = 'enqueued' AND j.held_until IS NULL AND j.scheduled_at <= v_now
        AND (p_queues IS NULL OR j.queue = ANY(p_queues))
        AND j.queue NOT IN (SELECT name FROM onward_queues WHERE paused)
        ORDER BY j.priority, j.scheduled_at, j.seq LIMIT 2000 FOR UPDATE SKIP LOCKED
    LOOP
        IF r.limit_key IS NULL THEN
            v_chosen := v_chosen || r.seq;
        ELSIF r.limit_key = ANY(v_skipped) THEN
            CONTINUE;
        ELSE
            IF NOT r.limit_key = ANY(v_locked) THEN
                IF NOT pg_try_advisory_xact_lock(7237240, hashtext(r.limit_key)) THEN
                    v_skipped := v_skipped || r.limit_key;
                    CONTINUE;
                END IF;
                v_locked := v_locked || r.limit_key;
            END IF;
            IF r.limit_concurrency IS NOT NULL THEN
                SELECT count(*) + cardinality(array_positions(v_chosen_keys, r.limit_key)) INTO v_count
                    FROM onward_jobs WHERE state = 'running' AND limit_key = r.limit_key;
                IF v_count >= r.limit_concurrency THEN
                    UPDATE onward_jobs SET held_until = '9999-01-01 00:00:00+00' WHERE seq IN (
                        SELECT seq FROM onward_jobs WHERE limit_key = r.limit_key AND state = 'enqueued'
                        AND held_until IS NULL AND scheduled_at <= v_now AND limit_concurrency <= v_count
                        FOR UPDATE SKIP LOCKED);
                    v_skipped := v_skipped || r.limit_key;
                    CONTINUE;
                END IF;
            END IF;
            IF r.throttle_limit IS NOT NULL THEN
                SELECT count(*) + cardinality(array_positions(v_throttled, r.limit_key)) INTO v_count
                    FROM onward_limit_starts
                    WHERE limit_key = r.limit_key AND started_at > v_now - make_interval(secs => r.throttle_per);
                IF v_count >= r.throttle_limit THEN
                    SELECT started_at + make_interval(secs => r.throttle_per) INTO v_free FROM onward_limit_starts
                        WHERE limit_key = r.limit_key AND started_at > v_now - make_interval(secs => r.throttle_per)
                        ORDER BY started_at OFFSET v_count - r.throttle_limit LIMIT 1;
                    UPDATE onward_jobs SET held_until = coalesce(v_free, v_now + make_interval(secs => r.throttle_per))
                        WHERE seq IN (SELECT seq FROM onward_jobs WHERE limit_key = r.limit_key AND state = 'enqueued'
                        AND held_until IS NULL AND scheduled_at <= v_now AND throttle_per = r.throttle_per
                        AND throttle_limit <= v_count FOR UPDATE SKIP LOCKED);
                    v_skipped := v_skipped || r.limit_key;
                    CONTINUE;
                END IF;
                v_throttled := v_throttled || r.limit_key;
                v_windows := v_windows || r.throttle_per;
            END IF;
            v_chosen := v_chosen || r.seq;
            v_chosen_keys := v_chosen_keys || r.limit_key;
        END IF;
        EXIT WHEN cardinality(v_chosen) >= p_wanted;
    END LOOP;
    IF cardinality(v_throttled) > 0 THEN
        INSERT INTO onward_limit_starts (limit_key, started_at) SELECT unnest(v_throttled), v_now;
        WITH w AS (INSERT INTO onward_limit_windows AS w (limit_key, longest)
            SELECT k, max(p) FROM unnest(v_throttled, v_windows) AS t(k, p) GROUP BY k ORDER BY k
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
