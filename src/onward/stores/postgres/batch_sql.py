"""SQL of batches on the PostgreSQL store (creating one and reading one; its counters and
callbacks are kept by the triggers of its migration)."""

from __future__ import annotations

# Counters and callbacks are kept by the triggers of migration 8: a member's state change moves
# its batch's counters in the same transaction (one UPDATE of one row); the change that leaves
# no member pending inserts the callbacks due. Here: creating a batch, and reading one.
INSERT_BATCH_ROW = (
    "INSERT INTO onward_batches (id, description, total, pending, created_at)"
    " VALUES (%s, %s, 0, 0, coalesce(%s::timestamptz, now()))"
)
INSERT_CALLBACKS = (
    "INSERT INTO onward_batch_callbacks (batch_id, kind, ord, id, job_class, queue, priority, args, kwargs,"
    " max_attempts, max_resumptions, delay, run_at, unique_key, trace_context)"
    " SELECT %s, e->>0, ord::int, e->>1, e->>2, e->>3, (e->>4)::int, e->>5, e->>6, (e->>7)::int,"
    " (e->>8)::int, (e->>9)::float8, (e->>10)::float8, e->>11, e->>12"
    " FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS r(e, ord)"
)
# Counting the members once, when the batch is created (a batch without members is settled here).
SET_BATCH_TOTAL = (
    "UPDATE onward_batches SET total = n.count, pending = n.count"
    " FROM (SELECT count(*) AS count FROM onward_jobs WHERE batch_id = %s) AS n WHERE id = %s"
)
SELECT_BATCH = (
    "SELECT b.*, ARRAY(SELECT j.id FROM onward_jobs AS j WHERE j.batch_id = b.id ORDER BY j.seq) AS job_ids,"
    " ARRAY(SELECT j.id FROM onward_jobs AS j WHERE j.parent_batch_id = b.id ORDER BY j.seq) AS callback_ids"
    " FROM onward_batches AS b WHERE b.id = %s"
)
BATCH_EXISTS = "SELECT 1 FROM onward_batches WHERE id = %s"
BATCH_MEMBERS = "SELECT id FROM onward_jobs WHERE batch_id = %s ORDER BY seq"
