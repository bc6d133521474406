"""Where jobs live: the embedded SQLite store and the PostgreSQL store.

Both implement :class:`onward.stores.base.Store`. Opening one by URL and the process-wide
default store are :mod:`onward.connecting`'s, re-exported here.
"""

from onward.connecting import (
    DEFAULT_URL,
    ENV_VAR,
    connect,
    connected,
    current,
    default,
    get_job,
    mask_url,
    open_store,
    resolve_url,
    set_default,
)
from onward.stores.base import Store

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "Store",
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
