"""A stand-in for the application's own database, used by the examples.

The examples process rows of this small SQLite file (imports, users, sales) and record every
side effect they have (a record imported, an email sent, a sale counted) in an ``effects``
table, so another process can count what was done, and how often, while a job runs.

``EXAMPLES_APP_DB`` names the file (default ``app.sqlite3`` in the current directory);
``EXAMPLES_ITEM_SECONDS`` makes each item take that long, to watch progress or interrupt.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

SCHEMA = """
CREATE TABLE IF NOT EXISTS imports (id INTEGER PRIMARY KEY, status TEXT NOT NULL, record_count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS import_records (
    id INTEGER PRIMARY KEY, import_id INTEGER NOT NULL, payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, plan TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sales (id INTEGER PRIMARY KEY, region TEXT NOT NULL, cents INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS effects (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, key TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS effects_kind ON effects (kind, key);
"""

REGIONS = ("north", "south", "east", "west")

_local = threading.local()


def path() -> str:
    return os.path.abspath(os.environ.get("EXAMPLES_APP_DB", "app.sqlite3"))


def connect() -> sqlite3.Connection:
    """This thread's connection to the application database (autocommit, WAL)."""
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None or getattr(_local, "path", None) != path():
        conn = sqlite3.connect(path(), isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(SCHEMA)
        _local.conn, _local.path = conn, path()
    return conn


@contextmanager
def transaction() -> Iterator[sqlite3.Connection]:
    conn = connect()
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def work() -> None:
    """The time one item takes (``EXAMPLES_ITEM_SECONDS``; none by default)."""
    seconds = float(os.environ.get("EXAMPLES_ITEM_SECONDS", "0"))
    if seconds > 0:
        time.sleep(seconds)


def record_effect(kind: str, key: object) -> None:
    """Note that something with an outside effect was done once more (one commit)."""
    connect().execute("INSERT INTO effects (kind, key) VALUES (?, ?)", (kind, str(key)))


def effects(kind: str) -> list[str]:
    """Every effect of ``kind``, in order, duplicates included."""
    return [r[0] for r in connect().execute("SELECT key FROM effects WHERE kind = ? ORDER BY seq", (kind,))]


# -- seeding ---------------------------------------------------------------------------------


def create_import(records: int) -> int:
    """A pending import of ``records`` rows; returns its id."""
    with transaction() as conn:
        import_id = conn.execute("INSERT INTO imports (status, record_count) VALUES ('pending', ?)", (records,))
        new_id = int(import_id.lastrowid or 0)
        conn.executemany(
            "INSERT INTO import_records (import_id, payload) VALUES (?, ?)",
            [(new_id, f"row {i}") for i in range(records)],
        )
    return new_id


def create_users(count: int) -> None:
    """``count`` users; every third one is on the ``trial`` plan, the others ``paid``."""
    with transaction() as conn:
        conn.executemany(
            "INSERT INTO users (email, plan) VALUES (?, ?)",
            [(f"user{i}@example.com", "trial" if i % 3 == 0 else "paid") for i in range(count)],
        )


def create_sales(count: int) -> None:
    """``count`` sales spread over four regions, with amounts that are easy to check."""
    with transaction() as conn:
        conn.executemany(
            "INSERT INTO sales (region, cents) VALUES (?, ?)",
            [(REGIONS[i % len(REGIONS)], 100 + i) for i in range(count)],
        )


def expected_totals() -> dict[str, int]:
    """What a correct report says: total cents per region."""
    rows = connect().execute("SELECT region, sum(cents) FROM sales GROUP BY region")
    return {region: int(total) for region, total in rows}
