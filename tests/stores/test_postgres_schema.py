"""The PostgreSQL schema: created on connect, upgraded by versioned migrations, safely at once."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

import onward
import pg
from onward.stores import open_store
from onward.stores.postgres.schema import SCHEMA_VERSION, current_version, migrate, migrations

CATALOG_QUERIES = {
    "columns": """
        SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attcollation::regcollation::text
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = current_schema() AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind = 'r'
        ORDER BY 1, 2""",
    "indexes": """
        SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1""",
    "constraints": """
        SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() ORDER BY 1, 2""",
    "relations": """
        SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() ORDER BY 1""",
    "functions": """
        SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema() ORDER BY 1""",
    "versions": "SELECT version, name FROM onward_schema ORDER BY version",
}


def catalog(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The schema's catalog, with the schema's own name replaced (each test has its own)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_schema()").fetchone()
        assert row is not None
        schema = row[0]
        dump = {name: conn.execute(query).fetchall() for name, query in CATALOG_QUERIES.items()}  # type: ignore[arg-type]
    return {
        name: [tuple(v.replace(schema, "<schema>") if isinstance(v, str) else v for v in r) for r in rows]
        for name, rows in dump.items()
    }


def test_a_new_database_gets_the_schema_on_connect(empty_pg_url: str) -> None:
    store = open_store(empty_pg_url)
    try:
        with psycopg.connect(empty_pg_url, autocommit=True) as conn:
            assert current_version(conn) == SCHEMA_VERSION
    finally:
        store.close()


def test_migrating_step_by_step_gives_the_same_catalog_as_a_fresh_schema() -> None:
    fresh, stepped = pg.new_schema(migrated=False), pg.new_schema(migrated=False)
    with psycopg.connect(fresh, autocommit=True) as conn:
        migrate(conn)
    for version in range(1, SCHEMA_VERSION + 1):  # as if each release had been installed in turn
        with psycopg.connect(stepped, autocommit=True) as conn:
            assert migrate(conn, target=version) == version - 1
            conn.execute(  # data written by that release must survive the next migrations
                "INSERT INTO onward_jobs (id, job_class, queue, priority, args, kwargs, state, max_attempts,"
                " scheduled_at, enqueued_at) VALUES (%s, 'm:J', 'default', 0, '[]', '{}', 'enqueued', 3, now(), now())",
                (f"job-{version}",),
            )
    fresh_catalog, stepped_catalog = catalog(fresh), catalog(stepped)
    assert fresh_catalog["indexes"], "the catalog dump is empty"
    assert stepped_catalog == fresh_catalog
    assert [v for v, _ in fresh_catalog["versions"]] == [m.version for m in migrations()]
    pg.drop_later(fresh)
    pg.drop_later(stepped)


def test_twenty_workers_connecting_at_once_to_a_new_database_all_succeed(empty_pg_url: str) -> None:
    start = threading.Barrier(20)
    opened: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def connect() -> None:
        start.wait()
        try:
            store = open_store(empty_pg_url)
        except BaseException as exc:
            with lock:
                errors.append(exc)
            return
        with lock:
            opened.append(store)

    threads = [threading.Thread(target=connect) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert len(opened) == 20
        with psycopg.connect(empty_pg_url) as conn:
            versions = conn.execute("SELECT version FROM onward_schema ORDER BY version").fetchall()
        assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))  # each applied exactly once
        opened[0].enqueue([])  # usable
    finally:
        for store in opened:
            store.close()


def test_a_database_from_a_newer_onward_is_refused(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO onward_schema (version, name) VALUES (%s, 'future')", (SCHEMA_VERSION + 1,))
    with pytest.raises(onward.ConfigurationError, match="newer than this Onward"):
        open_store(pg_url)


def test_an_unreachable_server_is_a_configuration_error_with_the_password_masked() -> None:
    url = "postgresql://someone:s3cret-pw@127.0.0.1:1/jobs"
    with pytest.raises(onward.ConfigurationError) as info:
        onward.connect(url)
    message = str(info.value)
    assert "postgresql://someone:***@127.0.0.1:1/jobs" in message
    assert "s3cret-pw" not in message


def test_a_missing_database_is_a_configuration_error_naming_the_url() -> None:
    url = pg.url_for("onward_no_such_database")
    with pytest.raises(onward.ConfigurationError, match="onward_no_such_database") as info:
        open_store(url)
    assert "does not exist" in str(info.value)


def test_an_unknown_user_is_a_configuration_error() -> None:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(pg.ADMIN_URL)
    url = urlunsplit(parts._replace(netloc=f"onward_nobody:pw@{parts.hostname}:{parts.port or 5432}"))
    with pytest.raises(onward.ConfigurationError, match="onward_nobody:\\*\\*\\*@"):
        open_store(url)


def test_postgres_and_postgresql_schemes_both_open_the_postgres_store(pg_url: str) -> None:
    from onward.stores.postgres import PostgresStore

    for url in (pg_url, "postgres://" + pg_url.split("://", 1)[1]):
        store = open_store(url)
        try:
            assert isinstance(store, PostgresStore)
        finally:
            store.close()


def test_the_database_url_environment_variable_selects_postgres(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from onward.stores.postgres import PostgresStore

    monkeypatch.setenv("ONWARD_DATABASE_URL", pg_url)
    store = open_store(None)
    try:
        assert isinstance(store, PostgresStore)
    finally:
        store.close()


def test_a_closed_store_refuses_to_work(pg_url: str) -> None:
    store = open_store(pg_url)
    store.close()
    with pytest.raises(onward.OnwardError, match="closed"):
        store.get("x")
