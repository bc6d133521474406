"""The demo's application: users, an import file's rows, and a log of every side effect.

It lives in its own SQLite file (``$ONWARD_DEMO_APP_DB``), apart from the job store, like an
application's own database. Every email "sent" and every record "imported" is one row in an
append-only log with no unique constraint, so running an item twice leaves two rows: the
demo counts duplicates for real instead of trusting the job library.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass

ENV_VAR = "ONWARD_DEMO_APP_DB"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS import_rows (id INTEGER PRIMARY KEY, import_id INTEGER NOT NULL, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS imports (id INTEGER PRIMARY KEY, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sent_emails (
    seq INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, kind TEXT NOT NULL, job_id TEXT NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS imported_records (
    seq INTEGER PRIMARY KEY, row_id INTEGER NOT NULL, job_id TEXT NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, detail TEXT NOT NULL, at REAL NOT NULL);
"""


def path() -> str:
    """The application database named by ``$ONWARD_DEMO_APP_DB``."""
    value = os.environ.get(ENV_VAR)
    if not value:
        raise RuntimeError(f"the demo jobs need ${ENV_VAR} (set by `onward demo`)")
    return value


def connect(db: str | None = None) -> sqlite3.Connection:
    """A connection in autocommit mode: each write is committed at once, as a mail API call
    or a row insert would be."""
    conn = sqlite3.connect(db or path(), isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def create(db: str, users: int, import_rows: int) -> None:
    """A fresh application database with ``users`` users and one import of ``import_rows`` rows."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    conn = connect(db)
    try:
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO users (id, email) VALUES (?, ?)", ((i, f"user{i}@example.com") for i in range(1, users + 1))
        )
        conn.execute("INSERT INTO imports (id, status) VALUES (1, 'pending')")
        conn.executemany(
            "INSERT INTO import_rows (id, import_id, payload) VALUES (?, 1, ?)",
            ((i, f"row {i}") for i in range(1, import_rows + 1)),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def send_email(conn: sqlite3.Connection, user_id: int, kind: str, job_id: str) -> None:
    conn.execute(
        "INSERT INTO sent_emails (user_id, kind, job_id, at) VALUES (?, ?, ?, ?)", (user_id, kind, job_id, time.time())
    )


def import_record(conn: sqlite3.Connection, row_id: int, job_id: str) -> None:
    conn.execute("INSERT INTO imported_records (row_id, job_id, at) VALUES (?, ?, ?)", (row_id, job_id, time.time()))


def record_event(conn: sqlite3.Connection, kind: str, detail: str) -> None:
    conn.execute("INSERT INTO events (kind, detail, at) VALUES (?, ?, ?)", (kind, detail, time.time()))


def events_of(conn: sqlite3.Connection, kind: str) -> list[str]:
    """The details of the events of ``kind``, oldest first, through ``conn``."""
    return [r[0] for r in conn.execute("SELECT detail FROM events WHERE kind = ? ORDER BY seq", (kind,))]


def distinct_recipients(conn: sqlite3.Connection, kind: str) -> int:
    row = conn.execute("SELECT count(DISTINCT user_id) FROM sent_emails WHERE kind = ?", (kind,)).fetchone()
    return int(row[0])


@dataclass(frozen=True)
class Tally:
    """Side effects of one kind: rows logged, distinct items, and the duplicates between."""

    rows: int
    distinct: int

    @property
    def duplicates(self) -> int:
        return self.rows - self.distinct


def email_tally(db: str, kind: str) -> Tally:
    conn = connect(db)
    try:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT user_id) FROM sent_emails WHERE kind = ?", (kind,)
        ).fetchone()
    finally:
        conn.close()
    return Tally(rows, distinct)


def import_tally(db: str) -> Tally:
    conn = connect(db)
    try:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT row_id) FROM imported_records").fetchone()
    finally:
        conn.close()
    return Tally(rows, distinct)


def events(db: str, kind: str) -> list[str]:
    conn = connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT detail FROM events WHERE kind = ? ORDER BY seq", (kind,))]
    finally:
        conn.close()
