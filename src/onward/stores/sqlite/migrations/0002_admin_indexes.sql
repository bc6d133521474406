-- Onward 2: indexes for operators (onward.admin): listing by queue or class newest first,
-- counting per queue and state, and finding finished jobs by when they finished.
CREATE INDEX onward_jobs_queue ON onward_jobs (queue, seq);
CREATE INDEX onward_jobs_class ON onward_jobs (job_class, seq);
CREATE INDEX onward_jobs_queue_state ON onward_jobs (queue, state);
CREATE INDEX onward_jobs_finished ON onward_jobs (finished_at, state) WHERE finished_at IS NOT NULL;
