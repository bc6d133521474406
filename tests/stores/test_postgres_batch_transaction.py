"""Batches inside a caller's transaction (``onward.transaction``): they exist if and only if it
commits, members and callbacks included."""

from __future__ import annotations

import psycopg
import pytest
from jobs_pg import Noop

import onward
from onward.stores.base import Store
from onward.testing import drain


def test_a_batch_opened_inside_a_transaction_commits_with_it(pg_store: Store, pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        with conn.transaction(), onward.transaction(conn):
            batch = onward.batch("in a transaction")
            with batch:
                handles = Noop.perform_all_later([(1,), (2,)])
                batch.on_success(Noop, "done")
        record = onward.get_batch(batch.id)
    assert (record.total, record.job_ids) == (2, tuple(h.id for h in handles))
    assert drain() == 3
    [callback] = onward.get_batch(batch.id).callback_ids
    assert onward.get_job(callback).result == ["done"]


def test_a_batch_inside_a_rolled_back_transaction_never_exists(pg_store: Store, pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        with onward.transaction(conn):
            batch = onward.batch()
            with batch:
                Noop.perform_later(1)
                batch.on_finish(Noop, "never")
        with pytest.raises(KeyError):  # not committed yet: not visible to others
            onward.get_batch(batch.id)
        conn.rollback()
    with pytest.raises(KeyError):
        onward.get_batch(batch.id)
    assert drain() == 0
