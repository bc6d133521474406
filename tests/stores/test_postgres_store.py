"""PostgreSQL-specific store behaviour: SKIP LOCKED claims, race-free unique keys, leases on
the database clock, NOTIFY wake-ups, and surviving dropped connections."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from jobs_pg import Noop, Unique

import onward
import waiting
from onward import stores
from onward.stores.base import Checkpoint, JobFilter, Store
from onward.testing import drain

NO_PROGRESS = Checkpoint(None, None, False)


poll = functools.partial(waiting.poll, timeout=20.0, interval=0.01)


def run_threads(n: int, target: Callable[[int], Any]) -> list[Any]:
    start = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def body(i: int) -> None:
        start.wait()
        try:
            results[i] = target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


def test_concurrent_claims_never_hand_out_a_job_twice(pg_store: Store) -> None:
    Noop.perform_all_later([(i,) for i in range(300)])

    def claim_all(i: int) -> list[str]:
        got = []
        while batch := pg_store.claim(f"worker-{i}-{len(got)}", None, 30.0, 7):
            got.extend(c.id for c in batch)
        return got

    claimed = [job_id for ids in run_threads(8, claim_all) for job_id in ids]
    assert len(claimed) == 300
    assert len(set(claimed)) == 300


def test_claims_take_lower_priority_then_older_jobs_first(pg_store: Store) -> None:
    late = Noop.set(priority=5).perform_later("late")
    first = Noop.set(priority=-1).perform_later("first")
    second = Noop.perform_later("second")
    claimed = pg_store.claim("w", None, 30.0, 3)
    assert [c.id for c in claimed] == [first.id, second.id, late.id]


def test_concurrent_enqueues_of_one_unique_key_make_one_job(pg_store: Store) -> None:
    ids = run_threads(20, lambda i: Unique.perform_later("same").id)
    assert len(set(ids)) == 1
    assert len(pg_store.list_jobs(JobFilter(limit=100))) == 1


def test_a_failed_unique_job_rerun_concurrently_is_rerun_once(pg_store: Store, pg_url: str) -> None:
    handle = Unique.perform_later("k")
    [claimed] = pg_store.claim("w", None, 30.0, 1)
    pg_store.fail(claimed.id, claimed.lease_token, NO_PROGRESS, "x.Error: boom")
    ids = run_threads(10, lambda i: Unique.perform_later("k").id)
    assert set(ids) == {handle.id}
    assert handle.refresh().state == "enqueued"
    assert len(pg_store.list_jobs(JobFilter(limit=100))) == 1


def test_leases_are_compared_with_the_database_clock(pg_store: Store, pg_url: str) -> None:
    handle = Noop.perform_later(1)
    [claimed] = pg_store.claim("w", None, 3600.0, 1)
    assert pg_store.reap_expired() == 0
    with psycopg.connect(pg_url, autocommit=True) as conn:  # age the lease in the database
        conn.execute(
            "UPDATE onward_jobs SET lease_expires_at = now() - interval '1 second' WHERE id = %s", (handle.id,)
        )
    assert pg_store.reap_expired() == 1
    record = handle.refresh()
    assert record.state == "enqueued"
    assert record.error is not None
    assert record.error.endswith("worker lost: lease expired")
    with pytest.raises(onward.LeaseLost):
        pg_store.complete(claimed.id, claimed.lease_token, "null", NO_PROGRESS, [], None)


def test_a_heartbeat_extends_the_lease_from_the_database_clock(pg_store: Store, pg_url: str) -> None:
    handle = Noop.perform_later(1)
    [claimed] = pg_store.claim("w", None, 5.0, 1)
    assert pg_store.heartbeat([(claimed.id, claimed.lease_token), ("unknown", "t")], 600.0) == {"unknown"}
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM lease_expires_at - now()) FROM onward_jobs WHERE id = %s", (handle.id,)
        ).fetchone()
    assert row is not None
    assert 590 < float(row[0]) <= 600


def test_times_are_stored_as_timestamptz(pg_store: Store, pg_url: str) -> None:
    Noop.perform_later(1)
    with psycopg.connect(pg_url) as conn:
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = 'onward_jobs' AND column_name LIKE '%%_at'"
            ).fetchall()
        )
    assert set(types.values()) == {"timestamp with time zone"}
    assert "lease_expires_at" in types


def test_a_notification_from_another_process_wakes_an_idle_worker(pg_store: Store, pg_url: str) -> None:
    wake = threading.Event()
    pg_store.add_listener(wake)
    other = stores.open_store(pg_url)  # as if from another process: its own connections
    try:
        listener = pg_store._listener  # type: ignore[attr-defined]
        assert listener.connected.wait(10)
        wake.clear()
        pg_store.wait_for_jobs(["mailers"], 0.0, wake)  # this worker serves "mailers" only
        Noop.set(queue="other").perform_later(0)  # in-process enqueues wake every listener...
        wake.clear()
        other.enqueue([Noop.set(queue="other").new_job((1,), {})])
        assert not wake.wait(0.3), "woken for a queue it does not serve"
        other.enqueue([Noop.set(queue="mailers").new_job((2,), {})])
        assert wake.wait(10)
    finally:
        other.close()
        pg_store.remove_listener(wake)


def test_the_listener_reconnects_after_losing_its_connection(pg_store: Store, pg_url: str) -> None:
    wake = threading.Event()
    pg_store.add_listener(wake)
    try:
        listener = pg_store._listener  # type: ignore[attr-defined]
        assert listener.connected.wait(10)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = current_setting('application_name') AND pid <> pg_backend_pid()"
                " AND query LIKE 'LISTEN%%'"
            )
            poll(lambda: not listener.connected.is_set() or _listening(conn) == 0, what="the listener to drop")
            poll(lambda: listener.connected.is_set() and _listening(conn) == 1, what="the listener to reconnect")
            wake.clear()
            conn.execute("SELECT pg_notify('onward_jobs', 'default')")
        assert wake.wait(10)
    finally:
        pg_store.remove_listener(wake)


def _listening(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = current_setting('application_name')"
        " AND query LIKE 'LISTEN%%'"
    ).fetchone()
    return int(row[0]) if row else 0


def test_the_store_reconnects_after_its_connections_are_killed(pg_store: Store, pg_url: str) -> None:
    first = Noop.perform_later(1)
    [claimed] = pg_store.claim("w", None, 30.0, 1)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = current_setting('application_name') AND pid <> pg_backend_pid()"
        ).fetchone()
    assert killed is not None
    assert killed[0] >= 1
    # Every operation goes on over new connections; the running job keeps its lease.
    assert pg_store.heartbeat([(claimed.id, claimed.lease_token)], 30.0) == set()
    second = Noop.perform_later(2)
    pg_store.complete(claimed.id, claimed.lease_token, "[1]", NO_PROGRESS, [], None)
    assert first.refresh().state == "succeeded"
    assert drain() == 1
    assert second.refresh().result == [2]


def test_continuations_are_inserted_with_the_parent_in_one_statement(pg_store: Store) -> None:
    parent = Noop.perform_later("parent")
    [claimed] = pg_store.claim("w", None, 30.0, 1)
    children = [Noop.set().new_job((i,), {}) for i in range(3)]
    ids = pg_store.complete(claimed.id, claimed.lease_token, "null", NO_PROGRESS, children, None)
    assert ids == [c.id for c in children]
    record = parent.refresh()
    assert record.children == tuple(ids)
    kids = [pg_store.get(i) for i in ids]
    assert all(k.parent_id == parent.id and k.enqueued_at == record.finished_at for k in kids)
    # A second completion (a zombie) inserts nothing.
    with pytest.raises(onward.LeaseLost):
        pg_store.complete(claimed.id, claimed.lease_token, "null", NO_PROGRESS, [Noop.set().new_job((9,), {})], None)
    assert len(pg_store.list_jobs(JobFilter(limit=100))) == 4


def test_without_a_listening_worker_every_claim_asks_the_database(pg_store: Store, pg_url: str) -> None:
    assert pg_store.claim("w", None, 30.0, 1) == []
    other = stores.open_store(pg_url)  # another process's enqueue: no in-process notice
    try:
        other.enqueue([Noop.set().new_job((1,), {})])
    finally:
        other.close()
    assert len(pg_store.claim("w", None, 30.0, 1)) == 1


def test_an_idle_worker_finds_a_job_scheduled_for_later_when_it_is_due(pg_store: Store) -> None:
    handle = Noop.set(wait=0.3).perform_later(1)
    worker = onward.Worker(store=pg_store)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        handle.wait(10)  # woken by nothing but the job's own schedule
    finally:
        worker.stop()
        thread.join(10)
    record = handle.refresh()
    assert record.state == "succeeded"
    assert record.started_at is not None
    assert record.started_at >= record.scheduled_at


def test_complete_many_commits_its_rows_in_one_statement_and_names_each_lost_lease(
    pg_store: Store, pg_url: str
) -> None:
    from onward.stores.base import Completion

    for i in range(5):
        Noop.perform_later(i)
    claimed = pg_store.claim("w", None, 30.0, 5)
    assert len(claimed) == 5
    taken, stale = claimed[1], claimed[3]
    with psycopg.connect(pg_url, autocommit=True) as conn:  # another worker took one over...
        conn.execute("UPDATE onward_jobs SET lease_token = 'someone-else' WHERE id = %s", (taken.id,))
        conn.execute("UPDATE onward_jobs SET state = 'enqueued' WHERE id = %s", (stale.id,))  # ...and one was reaped
    # Text that JSON and SQL both treat specially travels intact.
    odd = '{"quote": "\\"", "backslash": "\\\\", "snowman": "\u2603", "sql": "\'; DROP TABLE onward_jobs; --"}'
    done = [
        Completion(c.id, c.lease_token, odd if i == 0 else "null", Checkpoint("[]", None, False), "boom\n\u00e9")
        for i, c in enumerate(claimed)
    ]
    done.append(Completion("no-such-job", "t", "null", NO_PROGRESS))
    assert pg_store.complete_many(done) == {taken.id, stale.id, "no-such-job"}  # type: ignore[attr-defined]
    states = {c.id: pg_store.get(c.id).state for c in claimed}
    assert states == {
        claimed[0].id: "succeeded",
        taken.id: "running",
        claimed[2].id: "succeeded",
        stale.id: "enqueued",
        claimed[4].id: "succeeded",
    }
    first = pg_store.get(claimed[0].id)
    assert first.result == {
        "quote": '"',
        "backslash": "\\",
        "snowman": "\u2603",
        "sql": "'; DROP TABLE onward_jobs; --",
    }
    assert first.continuation_error == "boom\n\u00e9"
    assert first.finished_at is not None
    with psycopg.connect(pg_url) as conn:  # one statement: the successes share one transaction
        xmins = conn.execute("SELECT count(DISTINCT xmin::text) FROM onward_jobs WHERE state = 'succeeded'").fetchone()
        assert xmins == (1,)
        assert conn.execute("SELECT count(*) FROM onward_jobs").fetchone() == (5,)


def test_unclaim_and_heartbeat_guard_each_row_by_its_own_token(pg_store: Store, pg_url: str) -> None:
    for i in range(3):
        Noop.perform_later(i)
    a, b, c = pg_store.claim("w", None, 30.0, 3)
    assert pg_store.heartbeat([(a.id, a.lease_token), (b.id, "wrong"), (c.id, c.lease_token)], 600.0) == {b.id}
    pg_store.unclaim([(a.id, a.lease_token), (b.id, "wrong")])  # type: ignore[attr-defined]
    records = {r.id: r for r in (pg_store.get(a.id), pg_store.get(b.id), pg_store.get(c.id))}
    assert records[a.id].state == "enqueued"
    assert records[a.id].attempts == 0
    assert records[b.id].state == "running"
    assert records[b.id].attempts == 1
    assert records[c.id].state == "running"


def test_one_job_enqueued_alone_is_scheduled_like_a_batch(pg_store: Store, pg_url: str) -> None:
    import datetime as dt

    later = dt.datetime(2031, 5, 4, 3, 2, 1, 500000, tzinfo=dt.UTC)
    now_job = Noop.perform_later(1)
    delayed = Noop.set(wait=90).perform_later(2)
    at = Noop.set(wait_until=later).perform_later(3)
    records = [h.refresh() for h in (now_job, delayed, at)]
    assert all(r.state == "enqueued" and r.scheduled_at is not None for r in records)
    assert records[0].scheduled_at == records[0].enqueued_at
    assert records[1].scheduled_at - records[1].enqueued_at == dt.timedelta(seconds=90)
    assert records[2].scheduled_at == later
    assert records[0].args == [1]
    assert records[1].priority == 0


def test_the_claim_is_planned_once_and_reports_the_next_due_time_when_nothing_is_ready(
    pg_store: Store, pg_url: str
) -> None:
    from onward.stores.postgres import sql as q

    Noop.set(wait=3600).perform_later("later")
    for i in range(12):
        Noop.perform_later(i)
    # One connection, so every claim below runs the same prepared statement.
    with pg_store._pool.connection() as conn:  # type: ignore[attr-defined]
        claimed = []
        for _ in range(12):
            rows = conn.execute(q.claim_sql("one", 1), ("default", "w", 30.0, 30.0, "default", "default")).fetchall()
            assert len(rows) == 1
            claimed.append(rows[0][0])
        [empty] = conn.execute(q.claim_sql("one", 1), ("default", "w", 30.0, 30.0, "default", "default")).fetchall()
        plans = conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE 'WITH relaxed%'"
        ).fetchone()
    assert len(set(claimed)) == 12
    assert empty[0] is None
    assert 3500 < float(empty[-2]) <= 3600  # (the last column: whether jobs with limits wait)
    assert plans is not None
    assert plans[0] >= 8, plans  # the cached plan served the claims


def test_a_batch_of_jobs_keeps_its_order_options_and_unusual_text(pg_store: Store) -> None:
    import datetime as dt

    odd = ["nul \x00 byte", 'quote " and \\ backslash', "snowman \u2603 \U0001f600", "'; DROP TABLE j; --"]
    at = dt.datetime(2031, 1, 2, 3, 4, 5, 250000, tzinfo=dt.UTC)
    handles = Noop.perform_all_later([(text,) for text in odd])
    later = Noop.set(wait=2.5, priority=-3, queue="q \u00e9").perform_all_later([(1,), (2,)])
    timed = Noop.set(wait_until=at).perform_all_later([(3,)])
    records = [h.refresh() for h in handles + later + timed]
    assert [r.args for r in records[:4]] == [[text] for text in odd]
    assert [r.id for r in pg_store.list_jobs(JobFilter(limit=10))][::-1] == [h.id for h in handles + later + timed]
    assert all(r.queue == "q \u00e9" and r.priority == -3 for r in records[4:6])
    assert all(r.scheduled_at - r.enqueued_at == dt.timedelta(seconds=2.5) for r in records[4:6])
    assert records[6].scheduled_at == at
