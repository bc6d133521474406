"""``perform_later`` on PostgreSQL: a job due now with nothing else set is inserted by a
shorter statement; its row and its notification are those of the full one."""

from __future__ import annotations

from typing import Any

import psycopg
from jobs_pg import Noop

from onward.stores.base import Store
from onward.stores.postgres import inserts, sql

_SAME = (
    "job_class, queue, priority, args, kwargs, state, attempts, max_attempts, resumptions, max_resumptions,"
    " parent_id, unique_key, trace_context, schedule_key, scheduled_for, run_timeout, batch_id, limit_key,"
    " limit_concurrency, throttle_limit, throttle_per, held_until, scheduled_at = enqueued_at"
)


def _row(conn: psycopg.Connection[Any], job_id: str) -> tuple[Any, ...]:
    row = conn.execute(f"SELECT {_SAME} FROM onward_jobs WHERE id = %s", (job_id,)).fetchone()
    assert row is not None
    return tuple(row)


def test_a_plain_job_is_stored_and_announced_as_the_full_statement_stores_it(pg_store: Store, pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as listening, psycopg.connect(pg_url, autocommit=True) as conn:
        listening.execute(f"LISTEN {sql.CHANNEL}")
        handle = Noop.perform_later(1, "two")
        plain = Noop.set(queue="elsewhere").new_job((1, "two"), {})
        statement, params = inserts.one_insert(plain)
        assert statement == inserts.INSERT_PLAIN  # what perform_later sent for its job
        full_params = (*params, None, None, 0.0, None, None, *inserts.carried(plain), None)
        conn.execute(sql.INSERT_ONE, full_params)
        payloads = [n.payload for n in listening.notifies(timeout=5, stop_after=2)]
        mine, theirs = _row(conn, handle.id), _row(conn, plain.id)
    assert payloads == ["default", "elsewhere"]
    assert (mine[1], theirs[1]) == ("default", "elsewhere")
    assert mine[:1] + mine[2:] == theirs[:1] + theirs[2:]
    assert mine[-1] is True  # due at once: scheduled when enqueued


def test_a_job_with_anything_more_takes_the_full_statement(pg_store: Store, pg_url: str) -> None:
    for configured in (Noop.set(wait=5), Noop.set(timeout=3), Noop.set(priority=2)):
        job = configured.new_job((1,), {})
        statement, _ = inserts.one_insert(job)
        expected = inserts.INSERT_PLAIN if job.delay == 0 and job.timeout is None else sql.INSERT_ONE
        assert statement == expected
    handle = Noop.set(wait=5, timeout=3).perform_later(1)
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT run_timeout, extract(epoch FROM scheduled_at - enqueued_at) FROM onward_jobs WHERE id = %s",
            (handle.id,),
        ).fetchone()
    assert row is not None
    assert (row[0], float(row[1])) == (3.0, 5.0)
