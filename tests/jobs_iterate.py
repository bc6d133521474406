"""Job classes for the ``step.each`` tests (``tests/integration/test_iterate*.py``).

The jobs take a *spec* (a dict) naming the source to build, so one job class covers every
source, and they record each item they process in an application database: a SQLite file
named by their first argument. A test counts from there, outside the job, what was done and
how often, across executions and processes. Workers import these by path
(``jobs_iterate:ClassName``), so they live at module level.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

from onward import Job, Retry, Step, iterate

APP_SCHEMA = """
CREATE TABLE IF NOT EXISTS processed (seq INTEGER PRIMARY KEY, item TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS failures (item TEXT PRIMARY KEY, times INTEGER NOT NULL);
"""

_local = threading.local()


def app_connect(app: str) -> sqlite3.Connection:
    """This thread's connection to the application database ``app`` (autocommit, WAL)."""
    conns: dict[str, sqlite3.Connection] = _local.__dict__.setdefault("conns", {})
    conn = conns.get(app)
    if conn is None:
        conn = sqlite3.connect(app, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(APP_SCHEMA)
        conns[app] = conn
    return conn


def plain(item: Any) -> Any:
    """An item as JSON-friendly values: rows become lists, model objects their fields."""
    if isinstance(item, Mapping):
        return {str(k): plain(v) for k, v in item.items()}
    if isinstance(item, (list, tuple)) or type(item).__name__ == "Row":
        return [plain(v) for v in item]
    if hasattr(item, "_meta"):  # a Django model instance
        return [item.grp, item.seq, item.name]
    return item


def record(app: str, item: Any) -> None:
    """Note that ``item`` was processed once more (one commit)."""
    app_connect(app).execute("INSERT INTO processed (item) VALUES (?)", (json.dumps(plain(item)),))


def processed(app: str) -> list[Any]:
    """Every item processed, in order, duplicates included."""
    return [json.loads(r[0]) for r in app_connect(app).execute("SELECT item FROM processed ORDER BY seq")]


def fail_at(app: str, item: Any, times: int = 1) -> None:
    """Make processing ``item`` raise ``times`` times (before it is recorded)."""
    app_connect(app).execute("INSERT INTO failures VALUES (?, ?)", (json.dumps(plain(item)), times))


def _maybe_fail(app: str, item: Any) -> None:
    key = json.dumps(plain(item))
    conn = app_connect(app)
    if conn.execute("UPDATE failures SET times = times - 1 WHERE item = ? AND times > 0", (key,)).rowcount:
        raise RuntimeError(f"injected failure at item {key}")


# -- sources from specs ---------------------------------------------------------------------


def connect(spec: dict[str, Any]) -> Any:
    """A connection to the data a ``rows`` spec names (a SQLite path or a PostgreSQL URL)."""
    driver, url = spec["driver"], spec["url"]
    if driver == "sqlite3":
        return sqlite3.connect(url)
    if driver == "sqlite3-row":
        conn = sqlite3.connect(url)
        conn.row_factory = sqlite3.Row
        return conn
    if driver in ("psycopg", "psycopg-dict"):
        import psycopg
        from psycopg.rows import dict_row

        if driver == "psycopg-dict":
            return psycopg.connect(url, autocommit=True, row_factory=dict_row)
        return psycopg.connect(url, autocommit=True)
    if driver == "sqlalchemy":
        import sqlalchemy

        engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        return engine.connect()
    if driver == "django":
        from django.db import connection

        return connection
    raise ValueError(f"unknown driver {driver!r}")


def django_model() -> Any:
    """The Django model the queryset tests use (defined once, when Django is configured)."""
    model = globals().get("_DjangoItem")
    if model is None:
        from django.db import models

        class Item(models.Model):
            grp = models.IntegerField()
            seq = models.IntegerField()
            name = models.CharField(max_length=50)

            class Meta:
                app_label = "onward_iterate_tests"
                db_table = "items"

        model = globals()["_DjangoItem"] = Item
    return model


async def numbers(items: list[Any]) -> AsyncIterator[Any]:
    """An async generator over ``items``."""
    for item in items:
        yield item


class Lettered(iterate.Source[str]):
    """A source of one's own: items ``a1, a2, ..., b1, ...`` whose cursor is a string token."""

    def __init__(self, groups: str, per_group: int) -> None:
        self.groups, self.per_group = groups, per_group

    def total(self) -> int:
        return len(self.groups) * self.per_group

    def open(self, cursor: Any) -> Iterator[tuple[str, Any]]:
        group, done = cursor.split(":") if cursor else (self.groups[0], "0")
        for g in self.groups[self.groups.index(group) :]:
            for i in range(int(done) + 1, self.per_group + 1):
                yield f"{g}{i}", f"{g}:{i}"
            done = "0"


def build(spec: dict[str, Any]) -> tuple[Any, list[Any]]:
    """The source a spec names, and the connections to close afterwards."""
    kind = spec["kind"]
    if kind == "list":
        return list(spec["items"]), []
    if kind == "generator":
        return (item for item in spec["items"]), []
    if kind == "async-generator":
        return numbers(spec["items"]), []
    if kind == "custom":
        return Lettered(spec["groups"], spec["per_group"]), []
    if kind == "rows":
        conn = connect(spec)
        source = iterate.rows(conn, spec["sql"], spec.get("params", ()), key=spec["key"], batch_size=spec["batch"])
        return source, ([] if spec["driver"] == "django" else [conn])
    if kind == "csv":
        return iterate.csv(spec["path"], **spec.get("options", {})), []
    if kind == "queryset":
        qs = django_model().objects.all()
        if spec.get("values"):
            qs = qs.values("grp", "seq", "name")
        return iterate.queryset(qs, key=spec["key"], batch_size=spec["batch"]), []
    if kind == "batches":
        inner, conns = build(spec["inner"])
        return iterate.batches(inner, spec["size"]), conns
    raise ValueError(f"unknown source kind {kind!r}")


class Each(Job):
    """``for item in step.each(source)``: records every item, then a second step."""

    retry = Retry(attempts=3, backoff=0)

    def perform(self, app: str, spec: dict[str, Any]) -> int:
        self.app, self.spec = app, spec
        self.step("process", self.process, start=spec.get("start"))
        self.step("done", lambda: None)
        return len(processed(app))

    def process(self, step: Step) -> None:
        source, conns = build(self.spec)
        try:
            for item in step.each(source):
                _maybe_fail(self.app, item)
                record(self.app, item)
                if self.spec.get("stop_after") == plain(item):
                    break
        finally:
            for conn in conns:
                conn.close()


# -- async ---------------------------------------------------------------------------------


async def aconnect(spec: dict[str, Any]) -> tuple[Any, Callable[[], Awaitable[None]]]:
    """An asynchronous connection for a ``rows`` spec, and how to close it."""
    if spec["driver"] == "psycopg-async":
        import psycopg

        conn = await psycopg.AsyncConnection.connect(spec["url"], autocommit=True)
        return conn, conn.close
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(spec["url"])
    sa_conn = await engine.connect()

    async def close() -> None:
        await sa_conn.close()
        await engine.dispose()

    return sa_conn, close


class AsyncEach(Job):
    """``async for item in step.each(source)``: sync sources, async iterables, async connections."""

    retry = Retry(attempts=3, backoff=0)

    async def perform(self, app: str, spec: dict[str, Any]) -> int:
        self.app, self.spec = app, spec
        await self.step("process", self.process)
        return len(processed(app))

    async def process(self, step: Step) -> None:
        spec = self.spec
        conns: list[Any] = []
        close: Callable[[], Awaitable[None]] | None = None
        if spec["kind"] == "rows" and spec["driver"].endswith("-async"):
            conn, close = await aconnect(spec)
            source: Any = iterate.rows(
                conn, spec["sql"], spec.get("params", ()), key=spec["key"], batch_size=spec["batch"]
            )
        else:
            source, conns = build(spec)
        try:
            async for item in step.each(source):
                _maybe_fail(self.app, item)
                record(self.app, item)
        finally:
            for each_conn in conns:
                each_conn.close()
            if close is not None:
                await close()


# -- a worker killed mid-iteration ---------------------------------------------------------------


class KilledMidRows(Job):
    """Iterates 10,000 rows slowly enough to be killed in the middle (``ITERATE_ITEM_SECONDS``)."""

    checkpoint_interval = 0.25

    def perform(self, app: str, data: str) -> int:
        self.app, self.data = app, data
        self.step("process", self.process)
        return len(processed(app))

    def process(self, step: Step) -> None:
        pause = float(os.environ.get("ITERATE_ITEM_SECONDS", "0"))
        conn = sqlite3.connect(self.data)
        try:
            for (item_id,) in step.each(iterate.rows(conn, "SELECT id FROM items", key="id", batch_size=100)):
                time.sleep(pause)
                record(self.app, item_id)
        finally:
            conn.close()
