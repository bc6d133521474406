"""``iterate.rows``: keyset pages over a SQL query, never ``OFFSET``.

The query is wrapped, never rewritten::

    SELECT * FROM (<query>) AS onward_rows WHERE (k1, k2) > (?, ?) ORDER BY k1, k2 LIMIT n

so each page starts after the last key of the previous one, and a resumed step starts after
the last key it processed (the cursor). Values always travel as parameters, in the
connection's own placeholder style; key names are checked against the query's columns and
quoted. A connection is talked to through a small driver object: DB-API (sqlite3, psycopg,
psycopg2 and others), SQLAlchemy ``Connection``, Django's connection, and the asynchronous
psycopg and SQLAlchemy connections (for ``async for``).
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

from onward.iterate.core import Paged, SourceError, key_after, key_names, positive_int
from onward.iterate.drivers import AsyncPsycopgDriver, DjangoDriver, Driver, MySQLDriver

Page = tuple[list[Any], Callable[[Any], Any], bool]

_MYSQL_MODULES = frozenset(("pymysql", "MySQLdb", "mysql", "mariadb"))


def rows(
    conn: Any, sql: str, params: Sequence[Any] | Mapping[str, Any] = (), key: str | Sequence[str] = "id",
    batch_size: int = 1000,
) -> Rows:  # fmt: skip
    """The rows of ``sql`` on ``conn``, read in pages of ``batch_size`` in ``key`` order.

    ``key`` names the column (or columns, together unique and never NULL) to page by, as the
    query's result names them. Items are the rows as the connection returns them; the cursor
    is the last processed key (a list for several key columns).
    """
    return Rows(conn, sql, params, key, batch_size)


class Rows(Paged[Any]):
    """A keyset-paginated query (see :func:`rows`)."""

    def __init__(
        self, conn: Any, sql: str, params: Sequence[Any] | Mapping[str, Any], key: str | Sequence[str], batch_size: int
    ) -> None:
        what = "iterate.rows"
        if not isinstance(sql, str) or not sql.strip():
            raise TypeError(f"{what}: sql must be a non-empty str (the query whose rows to iterate), not {sql!r}")
        if isinstance(params, (str, bytes)) or not isinstance(params, (Sequence, Mapping)):
            raise TypeError(f"{what}: params must be a sequence or a mapping of query parameters, not {params!r}")
        self.sql = sql.strip().rstrip(";").rstrip()
        self.params = params
        self.keys = key_names(key, what)
        self.batch_size = positive_int(batch_size, "batch_size", what)
        self.driver = driver_for(conn, params)

    def __repr__(self) -> str:
        key = self.keys[0] if len(self.keys) == 1 else list(self.keys)
        return f"iterate.rows(key={key!r})"

    # -- the queries ------------------------------------------------------------------------
    def _wrapped(self) -> str:
        # the query on lines of its own: a trailing -- comment cannot swallow the parenthesis
        return f"SELECT * FROM (\n{self.sql}\n) AS onward_rows"

    def _probe(self) -> tuple[str, Any]:
        return f"{self._wrapped()} LIMIT 0", self.driver.bind(self.params, [])

    def _page(self, quoted: list[str], after: list[Any] | None) -> tuple[str, Any]:
        order = ", ".join(quoted)
        if after is None:
            where, values = "", []
        else:
            marks = self.driver.marks(self.params, len(after))
            if len(quoted) == 1:
                where = f" WHERE {quoted[0]} > {marks[0]}"
            else:
                where = f" WHERE ({order}) > ({', '.join(marks)})"
            values = after
        sql = f"{self._wrapped()}{where} ORDER BY {order} LIMIT {self.batch_size}"
        return sql, self.driver.bind(self.params, values)

    def _columns(self, names: list[str]) -> tuple[list[int], list[str]]:
        """Positions and names of the key columns among the query's columns."""
        positions = []
        for key in self.keys:
            found = [i for i, name in enumerate(names) if name == key]
            if not found:
                found = [i for i, name in enumerate(names) if name.lower() == key.lower()]
            if not found:
                raise SourceError(
                    f"{self!r}: key column {key!r} is not among the query's columns ({', '.join(names)}); "
                    "select it, or name the key as the query's result names it"
                )
            if len(found) > 1:
                raise SourceError(
                    f"{self!r}: the query has {len(found)} columns named {key!r}; give them distinct names"
                )
            positions.append(found[0])
        return positions, [names[i] for i in positions]

    def _reader(self, row: Any, positions: list[int], names: list[str]) -> Callable[[Any], Any]:
        """How to read the key from rows like ``row`` (by name from mappings, else by position)."""
        getter = itemgetter(*names) if isinstance(row, Mapping) else itemgetter(*positions)
        try:
            getter(row)
        except (TypeError, KeyError, IndexError):
            raise SourceError(
                f"{self!r}: cannot read the key from rows of type {type(row).__name__}; use rows that are "
                "tuples, mappings or sqlite3.Row (the connection's default row factory does)"
            ) from None
        return getter

    # -- the pages ------------------------------------------------------------------------------
    def pages(self, cursor: Any) -> Iterator[Page]:
        driver = self.driver
        if driver.is_async:
            raise SourceError(f"{self!r} on an asynchronous connection: iterate it with async for, in an async step")
        after = key_after(self, cursor, len(self.keys))
        positions, names = self._columns(driver.fetch(*self._probe())[1])
        quoted = [driver.quote(name) for name in names]
        many = len(names) > 1
        key_of: Callable[[Any], Any] | None = None
        while True:
            page = driver.fetch(*self._page(quoted, after))[0]
            if not page:
                return
            if key_of is None:
                key_of = self._reader(page[0], positions, names)
            yield page, key_of, many
            if len(page) < self.batch_size:
                return
            last = key_of(page[-1])
            after = list(last) if many else [last]

    async def apages(self, cursor: Any) -> AsyncIterator[Page]:
        driver = self.driver
        if not driver.is_async:
            for sync_page in self.pages(cursor):
                yield sync_page
            return
        after = key_after(self, cursor, len(self.keys))
        positions, names = self._columns((await driver.afetch(*self._probe()))[1])
        quoted = [driver.quote(name) for name in names]
        many = len(names) > 1
        key_of: Callable[[Any], Any] | None = None
        while True:
            page = (await driver.afetch(*self._page(quoted, after)))[0]
            if not page:
                return
            if key_of is None:
                key_of = self._reader(page[0], positions, names)
            yield page, key_of, many
            if len(page) < self.batch_size:
                return
            last = key_of(page[-1])
            after = list(last) if many else [last]


def driver_for(conn: Any, params: Sequence[Any] | Mapping[str, Any]) -> Driver:
    """The driver for ``conn``, checking that ``params`` suit its placeholder style."""
    cls = type(conn)
    package = cls.__module__.partition(".")[0]
    what = f"iterate.rows: {cls.__module__}.{cls.__qualname__}"
    driver: Driver
    if isinstance(conn, sqlite3.Connection):
        driver = Driver(conn, "named" if isinstance(params, Mapping) else "qmark")
    elif package == "sqlalchemy":
        from onward.contrib.sqlalchemy_rows import sqlalchemy_driver

        return sqlalchemy_driver(conn, params, what)
    elif package == "psycopg" and cls.__name__.startswith("Async"):
        driver = AsyncPsycopgDriver(conn, "pyformat")
    elif package == "django" and hasattr(conn, "ops"):
        driver = DjangoDriver(conn, "pyformat")
    else:
        style = getattr(sys.modules.get(package), "paramstyle", None)
        if style not in ("qmark", "numeric", "named", "format", "pyformat") or not hasattr(conn, "cursor"):
            raise TypeError(
                f"{what} is not a connection iterate.rows can use: pass a DB-API connection (sqlite3, "
                "psycopg, ...) or a SQLAlchemy Connection"
            )
        driver = (MySQLDriver if package in _MYSQL_MODULES else Driver)(conn, style)
    _check_params(driver, params, what)
    return driver


def _check_params(driver: Driver, params: Sequence[Any] | Mapping[str, Any], what: str) -> None:
    named = isinstance(params, Mapping)
    if named and driver.style in ("qmark", "numeric", "format"):
        raise TypeError(f"{what} takes positional parameters ({driver.style} style); pass params as a sequence")
    if not named and params and driver.style == "named":
        raise TypeError(f"{what} takes named parameters; pass params as a dict")
