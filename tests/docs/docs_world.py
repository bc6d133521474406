"""What the documentation's examples take from the reader's application: a mailer, a chat,
metrics, a payments client, an ``Import`` model with records, pages to crawl, and so on. Small
and real enough for the examples to run and be checked; ``run_doc.py`` makes them builtins."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DATABASE_URL",
    "TOKEN",
    "AccountClosed",
    "BrokenRecord",
    "Import",
    "User",
    "UserDeleted",
    "admin_chat",
    "broken_record",
    "calls",
    "email",
    "engine",
    "fix_record",
    "import_id",
    "imported_count",
    "mailer",
    "metrics",
    "pages",
    "payments",
    "search_index",
    "process_record",
    "store_page",
]

#: Every call made to a fake service, in order: (service, method, args).
calls: list[tuple[str, str, tuple[Any, ...]]] = []
_lock = threading.Lock()


class _Service:
    """Any method call is recorded in :data:`calls` and returns ``True``."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> bool:
            with _lock:
                calls.append((self._name, method, args))
            return True

        return call


mailer = _Service("mailer")
admin_chat = _Service("admin_chat")
metrics = _Service("metrics")
payments = _Service("payments")
search_index = _Service("search_index")


class UserDeleted(Exception):
    pass


class AccountClosed(Exception):
    pass


class BrokenRecord(Exception):
    pass


# -- an import of 1,000 records --------------------------------------------------------------


@dataclass
class Record:
    id: int


@dataclass
class Import:
    id: int
    record_count: int = 1000
    status: str = "new"
    processed: list[int] = field(default_factory=list)
    broken_at: int | None = None

    _all: Any = None

    @classmethod
    def get(cls, import_id: int) -> Import:
        found = _imports.get(import_id)
        if found is None:
            found = _imports[import_id] = Import(import_id)
        return found

    def update(self, status: str) -> None:
        self.status = status

    def records(self, start: int | None = None) -> Iterator[Record]:
        for n in range(start or 0, self.record_count):
            yield Record(n)


_imports: dict[int, Import] = {}
import_id = 7


def process_record(record: Record) -> None:
    imp = Import.get(import_id)
    if imp.broken_at is not None and record.id == imp.broken_at:
        raise BrokenRecord(f"record {record.id} is broken")
    imp.processed.append(record.id)


def imported_count() -> int:
    return len(set(Import.get(import_id).processed))


def broken_record(imp_id: int, position: int) -> None:
    Import.get(imp_id).broken_at = position


def fix_record(imp_id: int, position: int) -> None:
    Import.get(imp_id).broken_at = None


# -- a site to crawl -------------------------------------------------------------------------


@dataclass
class Page:
    token: int
    text: str


async def pages(site_id: int, after: int | None = None) -> AsyncIterator[Page]:
    for n in range((after or 0) + 1, 6):
        yield Page(n, f"page {n} of site {site_id}")


stored_pages: list[int] = []


async def store_page(page: Page) -> None:
    stored_pages.append(page.token)


def reset() -> None:
    """Forget every call, import and page (before each documented test)."""
    calls.clear()
    _imports.clear()
    stored_pages.clear()


# -- settings an application would have ------------------------------------------------------

DATABASE_URL = os.environ.get("DOCS_DATABASE_URL", "")
TOKEN = "a-long-random-token"
email = "ada@example.com"

# The application's own tables, in the same PostgreSQL database as Onward's.
engine: Any = None
User: Any = None
if DATABASE_URL:
    import psycopg
    from sqlalchemy import create_engine
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

    with psycopg.connect(DATABASE_URL, autocommit=True) as _conn:
        _conn.execute("CREATE TABLE IF NOT EXISTS users (id serial PRIMARY KEY, email text NOT NULL)")

    class _Base(DeclarativeBase):
        pass

    class _User(_Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str]

    User = _User
    engine = create_engine(DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1))
