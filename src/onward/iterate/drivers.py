"""How ``iterate.rows`` talks to each kind of connection: placeholders, quoting, fetching.

DB-API connections (sqlite3, psycopg, psycopg2 and any driver by its ``paramstyle``),
Django's connection and psycopg's ``AsyncConnection`` are handled here, by what they do,
without importing their packages; SQLAlchemy's connections by
:mod:`onward.contrib.sqlalchemy_rows`, imported only when one is used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class Driver:
    """How to run a query on one kind of connection: placeholders, quoting, fetching."""

    is_async = False

    def __init__(self, conn: Any, style: str) -> None:
        self.conn = conn
        self.style = style  # a DB-API paramstyle

    def marks(self, params: Sequence[Any] | Mapping[str, Any], n: int) -> list[str]:
        """Placeholders for ``n`` key values following the user's ``params``."""
        if isinstance(params, Mapping) or self.style == "named":
            names = [f"_onward_key{i}" for i in range(n)]
            if self.style == "pyformat":
                return [f"%({name})s" for name in names]
            return [f":{name}" for name in names]
        if self.style == "numeric":
            return [f":{len(params) + i + 1}" for i in range(n)]
        return ["?" if self.style == "qmark" else "%s"] * n

    def bind(self, params: Sequence[Any] | Mapping[str, Any], values: list[Any]) -> Any:
        """The user's parameters followed by the key values, in the form ``marks`` expects."""
        if isinstance(params, Mapping) or self.style == "named":
            named = dict(params) if isinstance(params, Mapping) else {}
            return {**named, **{f"_onward_key{i}": value for i, value in enumerate(values)}}
        return (*params, *values)

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def fetch(self, sql: str, params: Any) -> tuple[list[Any], list[str]]:
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql, params)
            names = [column[0] for column in cursor.description or ()]
            found = cursor.fetchall()
        finally:
            cursor.close()
        return found if isinstance(found, list) else list(found), names

    async def afetch(self, sql: str, params: Any) -> tuple[list[Any], list[str]]:
        raise NotImplementedError


class MySQLDriver(Driver):
    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"


class DjangoDriver(Driver):
    """Django's ``connection``: ``%s`` placeholders whatever the database."""

    def quote(self, name: str) -> str:
        return str(self.conn.ops.quote_name(name))


class AsyncPsycopgDriver(Driver):
    is_async = True

    async def afetch(self, sql: str, params: Any) -> tuple[list[Any], list[str]]:
        async with self.conn.cursor() as cursor:
            await cursor.execute(sql, params)
            names = [column.name for column in cursor.description or ()]
            return list(await cursor.fetchall()), names
