-- Onward 3: succeeded jobs whose continuations raised, newest first, for operators to find
-- and re-run (onward jobs --continuation-failed).
CREATE INDEX onward_jobs_continuation_error ON onward_jobs (seq) WHERE continuation_error IS NOT NULL;
