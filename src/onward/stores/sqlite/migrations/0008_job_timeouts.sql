-- Onward 8: a job's own time limit (``set(timeout=...)``, seconds; NULL: its class's, if any).
ALTER TABLE onward_jobs ADD COLUMN run_timeout REAL;
