"""``iterate.rows`` on SQLAlchemy connections: the query as ``text()``, with bound names.

Imported by :func:`onward.iterate.drivers.driver_for` only when it is given a SQLAlchemy
``Connection`` or ``AsyncConnection``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text

from onward.iterate.drivers import Driver


def sqlalchemy_driver(conn: Any, params: Sequence[Any] | Mapping[str, Any], what: str) -> Driver:
    """The driver for a SQLAlchemy connection; anything else of SQLAlchemy's is refused."""
    name = type(conn).__name__
    if name not in ("Connection", "AsyncConnection"):
        raise TypeError(f"{what} is not a Connection; pass engine.connect() (or session.connection())")
    if not isinstance(params, Mapping) and params:
        raise TypeError(f"{what}: SQLAlchemy binds parameters by name; pass params as a dict")
    return AsyncSQLAlchemyDriver(conn) if name == "AsyncConnection" else SQLAlchemyDriver(conn)


class SQLAlchemyDriver(Driver):
    """A SQLAlchemy ``Connection``."""

    def __init__(self, conn: Any) -> None:
        super().__init__(conn, "named")

    def quote(self, name: str) -> str:
        return str(self.conn.dialect.identifier_preparer.quote_identifier(name))

    def fetch(self, sql: str, params: Any) -> tuple[list[Any], list[str]]:
        result = self.conn.execute(text(sql), params)
        return list(result.fetchall()), list(result.keys())


class AsyncSQLAlchemyDriver(SQLAlchemyDriver):
    """A SQLAlchemy ``AsyncConnection`` (for ``async for``)."""

    is_async = True

    def quote(self, name: str) -> str:
        return str(self.conn.sync_connection.dialect.identifier_preparer.quote_identifier(name))

    async def afetch(self, sql: str, params: Any) -> tuple[list[Any], list[str]]:
        result = await self.conn.execute(text(sql), params)
        return list(result.fetchall()), list(result.keys())
