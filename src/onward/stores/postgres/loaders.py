"""Reading any stored time: a ``timestamptz`` outside Python's ``datetime`` range (a row
written by other means with ``'infinity'`` or year 10000) reads as the nearer of the bounds
Onward stores (``onward.records.EARLIEST``/``LATEST``) instead of failing the whole query, so
no row can break a claim, a listing or a dashboard page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.abc import AdaptContext
from psycopg.adapt import Loader
from psycopg.pq import Format

from onward.records import EARLIEST, LATEST

__all__ = ["configure"]

_TIMESTAMPTZ = 1184
_TIMESTAMP = 1114


class _ClampedTimes(Loader):
    """The driver's own text loader (fast, in C when available), bounds instead of errors."""

    format = Format.TEXT

    def __init__(self, oid: int, context: AdaptContext | None = None) -> None:
        super().__init__(oid, context)
        base = psycopg.adapters.get_loader(oid, Format.TEXT)
        assert base is not None
        self._load = base(oid, context).load

    def load(self, data: Any) -> datetime:
        try:
            return self._load(data)  # type: ignore[no-any-return]
        except psycopg.DataError:
            raw = bytes(data)
            early = raw.startswith(b"-") or raw.endswith(b" BC")
            bound = EARLIEST if early else LATEST
            return bound if self.oid == _TIMESTAMPTZ else bound.replace(tzinfo=None)


def configure(conn: psycopg.Connection[Any]) -> None:
    """Install the clamping time loaders on ``conn`` (a pool's ``configure`` hook)."""
    conn.adapters.register_loader(_TIMESTAMPTZ, _ClampedTimes)
    conn.adapters.register_loader(_TIMESTAMP, _ClampedTimes)
