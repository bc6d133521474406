"""Fresh PostgreSQL stores for tests.

``ONWARD_TEST_POSTGRES_URL`` names the server (default ``postgresql://postgres@127.0.0.1:5432/postgres``).

Each test gets a schema of its own, in a database that belongs to this test process: the
test's URL selects the schema (``options=-csearch_path=...``) and names its connections after
it (``application_name``). Creating a schema holding the tables takes a few milliseconds,
and dropping one, unlike dropping a database, does not force a checkpoint, so a whole test
run costs the server almost nothing. Schemas are dropped in a background thread after
closing any connection the test left open; the process's database is dropped when the
process exits, and databases left by processes that died are dropped by the next run.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

ADMIN_URL = os.environ.get("ONWARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PREFIX = "onward_tests_"

_lock = threading.Lock()
_database: str | None = None
_drops: queue.SimpleQueue[str | None] = queue.SimpleQueue()
_dropper: threading.Thread | None = None


def unavailable(reason: str) -> None:
    message = f"PostgreSQL tests need a server: {reason}. Start PostgreSQL or set ONWARD_TEST_POSTGRES_URL."
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def url_for(database: str, schema: str | None = None) -> str:
    """``ADMIN_URL`` pointing at ``database`` (and, given one, at ``schema`` in it)."""
    parts = urlsplit(ADMIN_URL)
    query = parts.query
    if schema is not None:
        query = "&".join(
            q for q in (query, f"options={quote('-csearch_path=' + schema)}", f"application_name={schema}") if q
        )
    return urlunsplit(parts._replace(path="/" + database, query=query))


def admin_connect(database: str | None = None) -> Any:
    import psycopg

    return psycopg.connect(url_for(database) if database else ADMIN_URL, autocommit=True, connect_timeout=5)


def _retrying(action: Any, attempts: int = 20) -> Any:
    """Run ``action()``, retrying while the server is restarting (a slow test may restart it)."""
    import psycopg

    for attempt in range(attempts):
        try:
            return action()
        except psycopg.OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    return None


def process_database() -> str:
    """This process's database (created on first use, dropped at exit)."""
    global _database
    with _lock:
        if _database is not None:
            return _database
        name = f"{PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with admin_connect() as admin:
            _drop_abandoned(admin)
            admin.execute(f'CREATE DATABASE "{name}"')
        _database = name
        atexit.register(_drop_process_database)
        return name


def _drop_abandoned(admin: Any) -> None:
    """Drop the databases of test processes that are gone (same machine, nobody connected)."""
    rows = admin.execute(
        "SELECT datname FROM pg_database d WHERE datname LIKE %s"
        " AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
        (PREFIX + "%",),
    ).fetchall()
    for (name,) in rows:
        pid = name[len(PREFIX) :].split("_", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def new_schema(migrated: bool = True) -> str:
    """Create a schema in this process's database (holding Onward's tables if ``migrated``)
    and return a URL that uses it."""
    from onward.stores.postgres.schema import migrate

    database = process_database()
    schema = f"t_{uuid.uuid4().hex[:16]}"

    def create() -> None:
        with admin_connect(database) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
            if migrated:
                conn.execute(f'SET search_path TO "{schema}"')
                migrate(conn)

    _retrying(create)
    return url_for(database, schema)


def drop_later(url: str) -> None:
    """Drop the schema of ``url`` in the background (closing any connection left open)."""
    global _dropper
    with _lock:
        if _dropper is None:
            _dropper = threading.Thread(target=_drop_loop, name="drop-test-schemas", daemon=True)
            _dropper.start()
    _drops.put(url)


def _drop_loop() -> None:
    from urllib.parse import parse_qs

    while (url := _drops.get()) is not None:
        parts = urlsplit(url)
        schema = parse_qs(parts.query)["application_name"][0]
        try:
            _retrying(lambda d=parts.path.lstrip("/"), s=schema: _drop_schema(d, s), attempts=10)
        except Exception as exc:  # dropped with the process's database anyway
            print(f"could not drop test schema {schema}: {exc}")


def _drop_schema(database: str, schema: str) -> None:
    with admin_connect(database) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (schema,))
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _drop_process_database() -> None:
    _drops.put(None)
    if _dropper is not None:
        _dropper.join(timeout=30)
    if _database is not None:
        try:
            with admin_connect() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{_database}" WITH (FORCE)')
        except Exception as exc:
            print(f"could not drop test database {_database}: {exc}")


def _fresh(request: pytest.FixtureRequest, migrated: bool) -> Iterator[str]:
    try:
        from onward.stores import postgres  # noqa: F401
    except ImportError as exc:
        unavailable(f"the PostgreSQL store cannot be imported ({exc})")
    try:
        url = new_schema(migrated)
    except Exception as exc:
        unavailable(f"cannot create a test schema on {ADMIN_URL} ({type(exc).__name__}: {exc})")
        raise  # unreachable: unavailable() raises
    try:
        yield url
    finally:
        drop_later(url)


def fresh_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """Yield the URL of a new, private store location holding the current schema; drop it afterwards."""
    yield from _fresh(request, migrated=True)


def empty_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """Yield the URL of a new, private store location without any Onward schema; drop it afterwards."""
    yield from _fresh(request, migrated=False)
