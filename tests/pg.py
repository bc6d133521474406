"""Fresh PostgreSQL databases for tests.

``ONWARD_TEST_POSTGRES_URL`` names the server (default ``postgresql://postgres@127.0.0.1:5432/postgres``).

Each test gets a database of its own, copied from a template that already holds the schema
(``CREATE DATABASE ... TEMPLATE``: about a tenth of a second). The template is named after a
hash of the migration files, so a schema change makes a new one, and it is built under an
advisory lock so concurrent test runs share it. Databases are dropped in a background thread
so tests do not wait for it.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

ADMIN_URL = os.environ.get("ONWARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PREFIX = "onward_test_"

_template: str | None = None
_template_lock = threading.Lock()
_drops: queue.SimpleQueue[str | None] = queue.SimpleQueue()
_dropper: threading.Thread | None = None


def unavailable(reason: str) -> None:
    message = f"PostgreSQL tests need a server: {reason}. Start PostgreSQL or set ONWARD_TEST_POSTGRES_URL."
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def url_for(database: str) -> str:
    """``ADMIN_URL`` pointing at ``database``."""
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path="/" + database))


def admin_connect() -> Any:
    import psycopg

    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)


def _schema_hash() -> str:
    digest = hashlib.sha1()
    folder = resources.files("onward").joinpath("stores", "migrations", "postgres")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            digest.update(entry.name.encode())
            digest.update(entry.read_bytes())
    return digest.hexdigest()[:12]


def template() -> str:
    """The name of a database holding the current schema, built once (per schema)."""
    global _template
    with _template_lock:
        if _template is not None:
            return _template
        import psycopg

        from onward.stores.postgres_schema import migrate

        name = f"onward_template_{_schema_hash()}"
        with admin_connect() as admin:
            admin.execute("SELECT pg_advisory_lock(4242424242)")
            try:
                exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                if not exists:
                    building = name + "_build"
                    admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
                    admin.execute(f'CREATE DATABASE "{building}"')
                    with psycopg.connect(url_for(building), autocommit=True) as conn:
                        migrate(conn)
                    admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
            finally:
                admin.execute("SELECT pg_advisory_unlock(4242424242)")
        _template = name
        return name


def create_database(name: str | None = None, from_template: bool = True) -> str:
    """Create a database (with the schema, from the template, unless told otherwise); returns its name."""
    import psycopg

    name = name or f"{PREFIX}{uuid.uuid4().hex[:16]}"
    source = f' TEMPLATE "{template()}"' if from_template else ""
    with admin_connect() as admin:
        for attempt in range(50):
            try:
                admin.execute(f'CREATE DATABASE "{name}"{source}')
                break
            except psycopg.errors.ObjectInUse:  # another run is copying the template too
                if attempt == 49:
                    raise
                time.sleep(0.02 * (attempt + 1))
    return name


def drop_later(name: str) -> None:
    """Drop ``name`` in the background (closing any connection left open)."""
    global _dropper
    with _template_lock:
        if _dropper is None:
            _dropper = threading.Thread(target=_drop_loop, name="drop-test-databases", daemon=True)
            _dropper.start()
            atexit.register(_finish_drops)
    _drops.put(name)


def _drop_loop() -> None:
    admin = None
    while (name := _drops.get()) is not None:
        for attempt in range(3):  # the server may have been restarted by a test meanwhile
            try:
                if admin is None or admin.closed:
                    admin = admin_connect()
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except Exception as exc:
                if admin is not None:
                    admin.close()
                admin = None
                if attempt == 2:
                    print(f"could not drop test database {name}: {exc}")
                else:
                    time.sleep(1)
    if admin is not None:
        admin.close()


def _finish_drops() -> None:
    _drops.put(None)
    if _dropper is not None:
        _dropper.join(timeout=60)


def fresh_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """Yield the URL of a new database holding the current schema; drop it afterwards."""
    try:
        from onward.stores import postgres  # noqa: F401
    except ImportError as exc:
        unavailable(f"the PostgreSQL store cannot be imported ({exc})")
    try:
        name = create_database()
    except Exception as exc:
        unavailable(f"cannot create a database on {ADMIN_URL} ({type(exc).__name__}: {exc})")
        raise  # unreachable: unavailable() raises
    try:
        yield url_for(name)
    finally:
        drop_later(name)


def empty_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """Yield the URL of a new database without any schema; drop it afterwards."""
    try:
        name = create_database(from_template=False)
    except Exception as exc:
        unavailable(f"cannot create a database on {ADMIN_URL} ({type(exc).__name__}: {exc})")
        raise
    try:
        yield url_for(name)
    finally:
        drop_later(name)
