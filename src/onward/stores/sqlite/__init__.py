"""The embedded SQLite store (standard library only)."""

from onward.stores.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
