"""SQL of batches on the SQLite store (creating one and reading one; its counters and
callbacks are kept by the triggers of its migration)."""

from __future__ import annotations

# Counters and callbacks are kept by the triggers of migrations 9 and 11: a member's state change moves
# its batch's counters in the same transaction; the change that leaves no member pending inserts
# the callbacks due. Here: creating a batch, and reading one.
INSERT_BATCH = (
    "INSERT INTO onward_batches (id, description, total, pending, created_at, changed_at) VALUES (?, ?, 0, 0, ?, ?)"
)
INSERT_CALLBACK = (
    "INSERT INTO onward_batch_callbacks (batch_id, kind, ord, id, job_class, queue, priority, args, kwargs,"
    " max_attempts, max_resumptions, delay, run_at, unique_key, trace_context)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Counting the members once, when the batch is created (a batch without members is settled here).
SET_BATCH_TOTAL = (
    "UPDATE onward_batches SET total = (SELECT count(*) FROM onward_jobs WHERE batch_id = ?1),"
    " pending = (SELECT count(*) FROM onward_jobs WHERE batch_id = ?1) WHERE id = ?1"
)
SELECT_BATCH = "SELECT * FROM onward_batches WHERE id = ?"
BATCH_MEMBERS = "SELECT id FROM onward_jobs WHERE batch_id = ? ORDER BY seq"
BATCH_CALLBACKS = "SELECT id FROM onward_jobs WHERE parent_batch_id = ? ORDER BY seq"
