"""Transactional enqueue: a job exists if and only if the caller's transaction commits."""

from __future__ import annotations

import jobs_pg
import psycopg
import pytest
from jobs_pg import EnqueuesInItsOwnTransaction, Noop, Unique

import onward
from onward import stores
from onward.stores.base import JobFilter, Store
from onward.testing import drain


def all_jobs(store: Store) -> list[onward.JobRecord]:
    return store.list_jobs(JobFilter(limit=1000))


def test_jobs_enqueued_in_a_committed_transaction_exist_and_run(pg_store: Store, pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        with conn.transaction():
            conn.execute("CREATE TABLE users (id int PRIMARY KEY)")
            conn.execute("INSERT INTO users VALUES (1)")
            with onward.transaction(conn):
                handle = Noop.perform_later(1)
                [other] = Noop.perform_all_later([(2,)])
            with pytest.raises(KeyError):  # not visible outside the transaction yet
                handle.refresh()
        assert handle.refresh().state == "enqueued"
    assert drain() == 2
    assert handle.refresh().result == [1]
    assert other.refresh().result == [2]


def test_jobs_enqueued_in_a_rolled_back_transaction_never_exist(pg_store: Store, pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        with onward.transaction(conn):
            handle = Noop.perform_later(1)
        conn.rollback()
    with pytest.raises(KeyError):
        handle.refresh()
    assert all_jobs(pg_store) == []
    assert drain() == 0


def _enqueue_then_raise(conn: psycopg.Connection) -> None:  # type: ignore[type-arg]
    with onward.transaction(conn):
        Noop.perform_later(1)
        raise RuntimeError("boom")


def test_an_exception_in_the_block_enqueues_nothing(pg_store: Store, pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        with pytest.raises(RuntimeError, match="boom"):
            _enqueue_then_raise(conn)
        conn.commit()
    assert all_jobs(pg_store) == []


def test_a_worker_is_woken_when_the_transaction_commits(pg_store: Store, pg_url: str) -> None:
    import threading

    wake = threading.Event()
    pg_store.add_listener(wake)
    try:
        assert pg_store._listener is not None  # type: ignore[attr-defined]
        assert pg_store._listener.connected.wait(10)  # type: ignore[attr-defined]
        wake.clear()
        with psycopg.connect(pg_url) as conn:
            with onward.transaction(conn):
                Noop.perform_later(1)
            assert not wake.wait(0.2), "woken before the commit"
            conn.commit()
        assert wake.wait(10), "not woken by the commit"
    finally:
        pg_store.remove_listener(wake)


def test_unique_keys_are_deduplicated_when_the_block_ends(pg_store: Store, pg_url: str) -> None:
    existing = Unique.perform_later("a")
    with psycopg.connect(pg_url) as conn:
        with onward.transaction(conn):
            handle = Unique.perform_later("a")
            fresh = Unique.perform_later("b")
            again = Unique.perform_later("b")
        assert handle.id == existing.id
        assert again.id == fresh.id
        conn.commit()
    assert sorted(j.unique_key or "" for j in all_jobs(pg_store)) == ["unique:a", "unique:b"]


def test_autocommit_without_a_transaction_is_refused(pg_store: Store, pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        with pytest.raises(onward.OnwardError, match="no transaction is open"), onward.transaction(conn):
            Noop.perform_later(1)
        with conn.transaction(), onward.transaction(conn):  # an explicit transaction is fine
            Noop.perform_later(2)
    assert [j.args for j in all_jobs(pg_store)] == [[2]]


def test_a_failed_transaction_is_reported(pg_store: Store, pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM no_such_table")
        with pytest.raises(onward.OnwardError, match="has failed"), onward.transaction(conn):
            Noop.perform_later(1)
        conn.rollback()
    assert all_jobs(pg_store) == []


def test_continuations_can_enqueue_in_the_applications_own_transaction(pg_store: Store, pg_url: str) -> None:
    jobs_pg.DATABASE_URL["url"] = pg_url
    committed = EnqueuesInItsOwnTransaction.perform_later(True)
    rolled_back = EnqueuesInItsOwnTransaction.perform_later(False)
    drain()
    for parent in (committed, rolled_back):
        record = parent.refresh()
        assert record.state == "succeeded"
        # The block's job follows the app's transaction; the other one is still the parent's child.
        assert len(record.children) == 1
        kids = [j for j in all_jobs(pg_store) if j.job_class.endswith(":Noop") and j.parent_id == parent.id]
        assert [k.args for k in kids] == [["collected with the parent"]]
    in_app = [j for j in all_jobs(pg_store) if j.parent_id is None and j.job_class.endswith(":Noop")]
    assert [j.args for j in in_app] == [["from continuations, in the app's transaction"]]  # committed one only
    assert all(j.state == "succeeded" for j in all_jobs(pg_store))


def test_the_sqlite_store_refuses_transactional_enqueue_clearly(sqlite_store: Store) -> None:
    import os

    url = os.environ.get("ONWARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        conn = psycopg.connect(url)
    except psycopg.OperationalError:
        pytest.skip("no PostgreSQL server")
    with conn, pytest.raises(onward.ConfigurationError, match="needs the PostgreSQL store"), onward.transaction(conn):
        Noop.perform_later(1)


def test_other_objects_are_refused(pg_store: Store) -> None:
    with pytest.raises(TypeError, match="psycopg"), onward.transaction(object()):
        pass


def test_an_explicit_store_is_used_for_the_handles(pg_url: str) -> None:
    store = stores.open_store(pg_url)
    try:
        with psycopg.connect(pg_url) as conn:
            with onward.transaction(conn, store=store):
                handle = Noop.perform_later(1)
            conn.commit()
        assert handle.store is store
        assert handle.refresh().state == "enqueued"
    finally:
        store.close()


def test_perform_now_inside_the_block_is_not_part_of_the_transaction(pg_store: Store, pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        with onward.transaction(conn):
            assert Noop.perform_now("now") == ["now"]
            later = Noop.perform_later("later")
        conn.rollback()
    assert [j.args for j in all_jobs(pg_store)] == [["now"]]
    with pytest.raises(KeyError):
        later.refresh()


def test_nested_blocks_each_follow_their_own_connection(pg_store: Store, pg_url: str) -> None:
    with psycopg.connect(pg_url) as outer_conn, psycopg.connect(pg_url) as inner_conn:
        with onward.transaction(outer_conn):
            Noop.perform_later("outer")
            with onward.transaction(inner_conn):
                Noop.perform_later("inner")
            Noop.perform_later("outer again")
        inner_conn.rollback()
        outer_conn.commit()
    assert sorted(j.args[0] for j in all_jobs(pg_store)) == ["outer", "outer again"]
