-- Onward 10: the claim of jobs with limits reads the first ready jobs a page at a time, in a
-- few statements per page (the locks of the page's keys tried together, their running jobs
-- counted together) instead of two statements per job; a worker calls it in place of the claim
-- statement while its queues have jobs with limits, so it claims jobs without limits too.
-- Claim up to p_wanted ready jobs with their limits applied, jobs without limits among them too
-- (a worker calls it instead of the claim statement while its queues have jobs with limits). It
-- reads the first ready jobs in claim order a page at a time, each page in a few statements
-- whatever its size: the page's rows locked (SKIP LOCKED) with the locks of its new limit keys
-- tried (never waited for: a key another claim is deciding about is passed over), then the
-- running jobs of the keys locked counted (a statement of its own, so it sees what was committed
-- before the lock was taken); then, in claim order, a job without limits is claimed, a job of a
-- key with room is claimed, and when its key is full the key's ready jobs are held.
CREATE OR REPLACE FUNCTION onward_claim_limited(p_worker text, p_queues text[], p_lease double precision, p_wanted integer)
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
