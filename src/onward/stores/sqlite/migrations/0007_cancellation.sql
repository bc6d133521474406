-- Onward 7: cancellation and paused queues. A cancellation request stays on the job
-- (cancel_requested_at) until an operator retries it; cancelled jobs are counted through an
-- index of their own, like the other finished states. A paused queue is not claimed from.
ALTER TABLE onward_jobs ADD COLUMN cancel_requested_at REAL;
CREATE INDEX onward_jobs_cancelled ON onward_jobs (queue, seq) WHERE state = 'cancelled';
CREATE TABLE onward_queues (
    name TEXT PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0,
    paused_at REAL
);
