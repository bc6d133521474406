-- Onward 1: the jobs table. Times are epoch seconds (REAL); JSON values are stored as text,
-- exactly as onward.serialization wrote them.
CREATE TABLE onward_jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    job_class TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    args TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    resumptions INTEGER NOT NULL DEFAULT 0,
    max_resumptions INTEGER,
    resume_pending INTEGER NOT NULL DEFAULT 0,
    progressed INTEGER NOT NULL DEFAULT 0,
    scheduled_at REAL NOT NULL,
    enqueued_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    error TEXT,
    continuation_error TEXT,
    parent_id TEXT,
    result TEXT,
    job_state TEXT,
    steps TEXT,
    unique_key TEXT,
    lease_token TEXT,
    lease_expires_at REAL,
    lease_timeout REAL,
    worker_id TEXT
);
CREATE INDEX onward_jobs_ready ON onward_jobs (priority, scheduled_at, seq) WHERE state = 'enqueued';
CREATE INDEX onward_jobs_ready_queue ON onward_jobs (queue, priority, scheduled_at, seq)
    WHERE state = 'enqueued';
CREATE INDEX onward_jobs_lease ON onward_jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX onward_jobs_parent ON onward_jobs (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX onward_jobs_unique ON onward_jobs (unique_key, seq) WHERE unique_key IS NOT NULL;
CREATE INDEX onward_jobs_state ON onward_jobs (state, seq);
