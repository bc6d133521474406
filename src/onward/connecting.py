"""Opening stores by URL, and the process-wide default store (``onward.connect``).

``sqlite:///relative.db`` and ``sqlite:////absolute/path.db`` open the embedded store;
``postgresql://`` (or ``postgres://``) the PostgreSQL one, whose driver is imported only then.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from onward.errors import ConfigurationError

if TYPE_CHECKING:
    from onward.records import JobRecord
    from onward.stores.base import Store

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "connect",
    "connected",
    "current",
    "default",
    "get_job",
    "mask_url",
    "open_store",
    "resolve_url",
    "set_default",
]

ENV_VAR = "ONWARD_DATABASE_URL"
DEFAULT_URL = "sqlite:///onward.sqlite3"

_lock = threading.Lock()
_default: Store | None = None


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    from onward.stores._common import mask_url as mask  # the stores' own, without loading a store

    return mask(url)


def resolve_url(url: str | None) -> str:
    """The URL ``connect(url)`` would open: the argument, ``$ONWARD_DATABASE_URL``, or the default."""
    return url or os.environ.get(ENV_VAR) or DEFAULT_URL


def open_store(url: str | None = None, *, must_exist: bool = False) -> Store:
    """Open the store at ``url`` without making it the default. With ``must_exist``, a SQLite
    file that does not exist is not created: ``ConfigurationError`` says there is no store
    there (for commands that only look at jobs)."""
    url = resolve_url(url)
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        from onward.stores.sqlite import SQLiteStore

        return SQLiteStore(url, must_exist=must_exist)
    if scheme in ("postgresql", "postgres"):
        try:
            from onward.stores.postgres import PostgresStore
        except ImportError as exc:  # the driver is an extra
            raise ConfigurationError(
                f"cannot open {mask_url(url)}: the PostgreSQL driver is not installed "
                f"({exc.name or exc}); install it with: pip install 'onward[postgres]'"
            ) from exc
        return PostgresStore(url)
    raise ConfigurationError(
        f"cannot open {mask_url(url)}: unknown scheme {scheme!r}; use sqlite:///path.db "
        "(relative), sqlite:////abs/path.db (absolute) or postgresql://user@host:5432/db"
    )


def connect(url: str | None = None) -> Store:
    """Open the store at ``url`` and make it the process-wide default."""
    store = open_store(url)
    set_default(store)
    return store


@contextmanager
def connected(url: str | None = None) -> Iterator[Store]:
    """Open the store at ``url`` as the default for a ``with`` block; afterwards the previous
    default comes back and the store is closed (tests, scripts, the demo)."""
    store = open_store(url)
    previous = set_default(store)
    try:
        yield store
    finally:
        set_default(previous)
        store.close()


def set_default(store: Store | None) -> Store | None:
    """Make ``store`` the default; returns the previous default."""
    global _default
    with _lock:
        previous, _default = _default, store
    return previous


def current() -> Store | None:
    """The default store, if one was connected."""
    return _default


def default() -> Store:
    """The default store, connecting to the default URL on first use."""
    global _default
    store = _default
    if store is not None:
        return store
    with _lock:
        if _default is None:
            _default = open_store(None)
        return _default


def get_job(id: str) -> JobRecord:  # noqa: A002 - the documented name
    """The record of job ``id`` in the default store; ``KeyError`` if there is none."""
    return default().get(id)


def cancel(id: str) -> JobRecord:  # noqa: A002 - the documented name
    """Cancel job ``id`` in the default store and return its record (see ``JobHandle.cancel``);
    ``KeyError`` if there is none."""
    store = default()
    store.cancel_job(id)
    return store.get(id)
