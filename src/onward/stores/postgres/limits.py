"""Claiming jobs that have limits, in the PostgreSQL store: one call of a server-side function.

The claim statement (``sql.claim_sql``) claims jobs without limits and says whether jobs
with a limit key were among the first ready ones (or held ones are due again); then
:func:`claim_limited` calls ``onward_claim_limited`` (migration 10), which goes through the
first ready jobs in claim order, in one transaction and one round trip. While a worker's
queues have jobs with limits, its claims call the function alone (it claims jobs without
limits too), until a claim finds fewer jobs than it asked for or none with limits.

The function reads the ready jobs a page at a time, in a few statements per page however many
jobs it holds: the page's rows are locked (``SKIP LOCKED``) and the advisory locks of its new
limit keys *tried* together (a claim never waits: when another claim decides about a key, it is
passed over this time); then the running jobs of the keys locked are counted together, in a
statement of its own (so it sees what was committed before the lock was taken). In claim order
it then claims the job or *holds* the key's ready jobs (``held_until``), which takes them out of
the ready indexes: a held key costs the claim nothing however many jobs wait. The trigger that
gives a slot back takes the same lock shared, so it sees every hold a claim committed; the
clock is the database's at the claim (``clock_timestamp()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from onward.stores.postgres import limit_sql

__all__ = ["claim_limited"]


def claim_limited(
    conn: psycopg.Connection[Any], worker_id: str, queues: Sequence[str] | None, lease_timeout: float, limit: int
) -> list[Any]:
    """Claim up to ``limit`` ready jobs, limits applied (rows of ``limit_sql.CLAIM_LIMITED``, in
    claim order)."""
    rows = conn.execute(limit_sql.CLAIM_LIMITED, (worker_id, list(queues) if queues else None, lease_timeout, limit))
    return sorted(rows.fetchall(), key=lambda r: (r[3], r[-2], r[-1]))
