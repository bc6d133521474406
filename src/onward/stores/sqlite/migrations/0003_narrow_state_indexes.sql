-- Onward 3: no index over every row's state. Claims and completions change the state of every
-- job twice, and an index over (state, ...) or (queue, state) for all rows made each change cost
-- more as the table grew (a third of a claim's cost with a million queued jobs). Finished jobs,
-- which never change again, keep indexes by state; waiting jobs get one by age; running jobs are
-- few and found through the lease index.
DROP INDEX onward_jobs_state;
DROP INDEX onward_jobs_queue_state;
CREATE INDEX onward_jobs_done ON onward_jobs (state, seq) WHERE state IN ('succeeded', 'failed', 'discarded');
CREATE INDEX onward_jobs_done_queue ON onward_jobs (queue, state)
    WHERE state IN ('succeeded', 'failed', 'discarded');
CREATE INDEX onward_jobs_waiting ON onward_jobs (seq) WHERE state = 'enqueued';
