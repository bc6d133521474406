-- Onward 6: cancellation and paused queues. A job may be cancelled (a final state); a
-- cancellation request stays on the job (cancel_requested_at) until an operator retries it.
-- A paused queue is not claimed from.
ALTER TABLE onward_jobs DROP CONSTRAINT onward_jobs_state_check;
ALTER TABLE onward_jobs ADD CONSTRAINT onward_jobs_state_check
    CHECK (state IN ('enqueued', 'running', 'succeeded', 'failed', 'discarded', 'cancelled'));
ALTER TABLE onward_jobs ADD COLUMN cancel_requested_at timestamptz;
CREATE TABLE onward_queues (
    name text PRIMARY KEY,
    paused boolean NOT NULL DEFAULT false,
    paused_at timestamptz
);
