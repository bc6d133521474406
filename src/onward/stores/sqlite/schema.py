"""The SQLite schema: numbered ``migrations/NNNN_name.sql`` files applied on connect, the
version kept in ``PRAGMA user_version``. Files made by any earlier Onward upgrade in place."""

from __future__ import annotations

import sqlite3

from onward.stores._common import migrations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

#: The migrations' SQL, in order (``MIGRATIONS[n]`` brings version ``n`` to ``n + 1``).
MIGRATIONS: tuple[str, ...] = tuple(m.sql for m in migrations("onward.stores.sqlite"))
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the file's schema to ``SCHEMA_VERSION``; safe when processes connect at once."""
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"the file has schema version {version}, newer than this Onward ({SCHEMA_VERSION}); upgrade Onward"
            )
        for number in range(version, SCHEMA_VERSION):
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _statements(script: str) -> list[str]:
    """The statements of a migration file (``;``-separated, a trigger's body included;
    comments are ``--`` lines)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    statements, pending = [], ""
    for piece in "\n".join(lines).split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    return statements
