"""Claiming jobs that have limits, in the PostgreSQL store: one call of a server-side function.

The claim statement (``sql.claim_sql``) claims jobs without limits and says whether jobs
with a limit key were among the first ready ones (or held ones are due again); then
:func:`claim_limited` calls ``onward_claim_limited`` (migration 9), which goes through the
first ready jobs in claim order, in one transaction and one round trip. For each limit key it
takes an advisory lock exclusively, *trying* (a claim never waits: when another claim decides
about the key, it is passed over this time), counts the key's running jobs and recent starts
in statements of their own (so they see what was committed before the lock was taken), and
claims the job or *holds* the key's ready jobs (``held_until``), which takes them out of the
ready indexes: a held key costs the claim nothing however many jobs wait. The trigger that
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
