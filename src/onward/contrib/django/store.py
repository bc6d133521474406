"""The store a Django project uses, chosen from its settings and opened on first use.

``TASKS[alias]["OPTIONS"]["database_url"]`` names a store explicitly. Without it, Onward
follows Django's ``default`` database:

- PostgreSQL: the same database (Onward's own tables beside Django's), reached with the same
  host, port, user, password, name and libpq options. A job enqueued while that Django
  connection is inside ``transaction.atomic()`` is inserted through the connection itself,
  so it exists if and only if the block commits (:func:`join_atomic`).
- SQLite: a file of Onward's own beside Django's (``db.onward.sqlite3`` for
  ``db.sqlite3``), since Django's SQLite connection cannot share its transaction; jobs are
  enqueued at once. An in-memory database (Django's test runner) gets a temporary file for
  the process.

Stores open lazily: importing settings, running ``migrate`` or ``collectstatic`` opens
nothing, and a store opened after Django's test runner switched to its test database uses
that database.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, urlencode

from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from onward import connecting
from onward.stores.base import Inserter, Store

__all__ = [
    "DjangoStore",
    "close_all",
    "database_url",
    "for_options",
    "join_atomic",
]

DEFAULT_DATABASE = "default"

#: Keys of a PostgreSQL ``OPTIONS`` dict that Django uses itself; the rest are libpq's.
_DJANGO_ONLY_OPTIONS = frozenset({"isolation_level", "server_side_binding", "assume_role", "pool", "cursor_factory"})


class DjangoStore:
    """A store opened on first use, then shared by every thread of the process.

    It stands for the store it opens (attribute access is passed on), so it can be Onward's
    default store before anything is connected. ``database`` names the Django database
    whose transactions enqueues join, or is ``None``.
    """

    def __init__(self, locate: Callable[[], str], database: str | None, description: str) -> None:
        self._locate = locate
        self.database = database
        self.description = description
        self._store: Store | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Onward store for {self.description}: {self._store!r}>"

    @property
    def opened(self) -> Store | None:
        """The store, if it was opened."""
        return self._store

    def open(self) -> Store:
        """The store, opening it now if needed."""
        store = self._store
        if store is not None:
            return store
        with self._lock:
            if self._store is None:
                self._store = connecting.open_store(self._locate())
            return self._store

    def close(self) -> None:
        """Close the store's connections; the next use opens it again."""
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    def is_(self, store: object) -> bool:
        """Whether ``store`` is this one (or the store it opened)."""
        return store is self or (self._store is not None and store is self._store)

    def as_store(self) -> Store:
        """This object where a :class:`~onward.stores.base.Store` is expected."""
        return cast(Store, self)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.open(), name)


_stores: dict[tuple[str, str], DjangoStore] = {}
_stores_lock = threading.Lock()


def for_options(options: Mapping[str, Any]) -> DjangoStore:
    """The store of a ``TASKS`` entry's ``OPTIONS``: ``database_url``, else Django's
    ``default`` database. One per location and process."""
    url = options.get("database_url")
    if url is not None:
        if not isinstance(url, str) or not url:
            raise ImproperlyConfigured(f"TASKS OPTIONS['database_url'] must be a store URL, got {url!r}")
        return _shared(("url", url), lambda: DjangoStore(lambda: url, None, connecting.mask_url(url)))
    return _shared(("database", DEFAULT_DATABASE), lambda: _for_database(DEFAULT_DATABASE))


def _shared(key: tuple[str, str], make: Callable[[], DjangoStore]) -> DjangoStore:
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = make()
        return store


def _for_database(alias: str) -> DjangoStore:
    engine = str(connections.settings[alias].get("ENGINE", ""))
    joins = alias if _is_postgres(engine) else None
    return DjangoStore(lambda: database_url(connections[alias].settings_dict), joins, f"Django's {alias!r} database")


def _is_postgres(engine: str) -> bool:
    return "postgresql" in engine or "postgis" in engine


def database_url(database: Mapping[str, Any]) -> str:
    """The Onward URL for a Django ``DATABASES`` entry: the same PostgreSQL database, or an
    SQLite file beside Django's."""
    engine = str(database.get("ENGINE", ""))
    if _is_postgres(engine):
        return _postgres_url(database)
    if "sqlite3" in engine or "spatialite" in engine:
        return _sqlite_url(database.get("NAME"))
    raise ImproperlyConfigured(
        f"Onward stores jobs in PostgreSQL or SQLite, and Django's database uses {engine or 'no ENGINE'}; "
        "set TASKS[...]['OPTIONS']['database_url'] to a store URL (sqlite:////path/jobs.db or postgresql://...)"
    )


def _postgres_url(database: Mapping[str, Any]) -> str:
    query: dict[str, str] = {}
    host = str(database.get("HOST") or "")
    if host.startswith("/"):  # a Unix socket directory
        query["host"], host = host, ""
    elif ":" in host:  # an IPv6 address
        host = f"[{host}]"
    port = str(database.get("PORT") or "")
    netloc = quote(host, safe="[]:") + (f":{port}" if port else "")
    user = str(database.get("USER") or "")
    password = str(database.get("PASSWORD") or "")
    credentials = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    if credentials or not netloc:
        netloc = f"{credentials}@{netloc}"  # "@" alone: libpq's defaults, and the URL keeps its "//"
    for key, value in (database.get("OPTIONS") or {}).items():
        if key not in _DJANGO_ONLY_OPTIONS and isinstance(value, (str, int)) and not isinstance(value, bool):
            query[key] = str(value)
    name = quote(str(database.get("NAME") or ""), safe="")
    url = f"postgresql://{netloc}/{name}"
    return f"{url}?{urlencode(query, quote_via=quote)}" if query else url


def _sqlite_url(name: Any) -> str:
    text = str(name or "")
    if not text or text == ":memory:" or "mode=memory" in text:
        return "sqlite:///" + str(_temporary_file())
    path = Path(text).resolve()
    own = path.with_name(path.name.removesuffix(".sqlite3") + ".onward.sqlite3")
    return "sqlite:///" + str(own)


_temporary: Path | None = None


def _temporary_file() -> Path:
    """A file for this process's jobs when Django's database lives in memory."""
    global _temporary
    if _temporary is None:
        directory = tempfile.mkdtemp(prefix="onward-django-")
        atexit.register(shutil.rmtree, directory, True)
        _temporary = Path(directory) / "onward.sqlite3"
    return _temporary


# -- joining atomic() ---------------------------------------------------------------------


def join_atomic(store: Store) -> Inserter | None:
    """The joiner :func:`install` registers: inside ``transaction.atomic()`` on the Django
    database a store follows, insert through Django's connection (see the module docs)."""
    for candidate in list(_stores.values()):
        if candidate.database is not None and candidate.is_(store):
            connection = connections[candidate.database]
            if connection.in_atomic_block or (connection.connection is not None and not connection.get_autocommit()):
                return candidate.join_transaction(connection)  # type: ignore[no-any-return]
            return None
    return None


def close_all() -> None:
    """Close every store opened for the project's settings; each opens again on next use
    (tests: see :mod:`onward.contrib.django.testing`)."""
    for store in list(_stores.values()):
        store.close()
