"""The PostgreSQL schema: versioned migration files applied on connect, under an advisory lock.

``migrations/schema.sql`` is the current schema, applied in one go to a new
database; ``NNNN_name.sql`` files bring an existing database up to date, each in its own
transaction. The versions applied are recorded in ``onward_schema``. Every connect first reads
the recorded version without locking (the common case: nothing to do); only when something is
missing does it take a transaction-level advisory lock, re-read and apply, so any number of
workers may start at once against a new or an old database.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import psycopg

from onward.errors import ConfigurationError
from onward.stores import _common
from onward.stores._common import Migration

#: ``pg_advisory_xact_lock`` key serialising schema changes (any constant shared by all versions).
MIGRATION_LOCK = 0x6F6E77617264  # "onward"

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS onward_schema (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def migrations() -> list[Migration]:
    """The numbered migration files, in order."""
    return _common.migrations("onward.stores.postgres")


def fresh_schema() -> str:
    """The current schema as one script, for a new database."""
    return resources.files("onward.stores.postgres").joinpath("migrations", "schema.sql").read_text(encoding="utf-8")


SCHEMA_VERSION = len(migrations())


def current_version(conn: psycopg.Connection[Any]) -> int:
    """The schema version recorded in the database; 0 when it has no Onward schema."""
    row = conn.execute("SELECT to_regclass('onward_schema') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM onward_schema").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: psycopg.Connection[Any], target: int | None = None) -> int:
    """Bring the database to ``target`` (default: the latest version); returns the version
    found before. ``conn`` must be in autocommit mode. Safe when many processes call it at
    once: the work happens under a transaction-level advisory lock."""
    target = SCHEMA_VERSION if target is None else target
    found = current_version(conn)
    if found == target:
        return found
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        # Read the version from the table itself, not via to_regclass(): after waiting on an
        # advisory lock the catalog cache may not show what the lock holder just committed.
        conn.execute(_VERSION_TABLE)
        row = conn.execute("SELECT coalesce(max(version), 0) FROM onward_schema").fetchone()
        found = int(row[0]) if row else 0
        if found > SCHEMA_VERSION:
            raise ConfigurationError(
                f"the database has Onward schema version {found}, newer than this Onward"
                f" ({SCHEMA_VERSION}); upgrade Onward"
            )
        steps = migrations()
        if found == 0 and target == SCHEMA_VERSION:
            conn.execute(fresh_schema())
            applied = steps
        else:
            applied = [m for m in steps if found < m.version <= target]
            for migration in applied:
                conn.execute(migration.sql)
        for migration in applied:
            conn.execute(
                "INSERT INTO onward_schema (version, name) VALUES (%s, %s)", (migration.version, migration.name)
            )
    return found
