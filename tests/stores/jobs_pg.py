"""Job classes for the PostgreSQL-specific tests (imported by name by in-process workers)."""

from __future__ import annotations

from typing import Any

import psycopg

import onward
from onward import Job

#: Set by a test: where ``EnqueuesInItsOwnTransaction`` writes.
DATABASE_URL: dict[str, str] = {}


class Noop(Job):
    def perform(self, *args: Any) -> Any:
        return list(args)


class Unique(Job):
    def perform(self, key: str) -> str:
        return key

    def unique_key(self, key: str) -> str:
        return f"unique:{key}"


class EnqueuesInItsOwnTransaction(Job):
    """Continuations that commit a follow-up through the application's own connection."""

    def perform(self, commit: bool) -> bool:
        return commit

    def continuations(self, commit: bool) -> None:
        with psycopg.connect(DATABASE_URL["url"]) as conn:
            with onward.transaction(conn):
                Noop.perform_later("from continuations, in the app's transaction")
            Noop.perform_later("collected with the parent")
            if commit:
                conn.commit()
            else:
                conn.rollback()
