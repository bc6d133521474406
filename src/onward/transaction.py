"""Transactional enqueue: jobs that exist if and only if the caller's transaction commits.

::

    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("INSERT INTO users ...")
        with onward.transaction(conn):
            SendWelcomeEmail.perform_later(user_id)

Inside the block, ``perform_later`` and ``perform_all_later`` calls are collected (the same
way ``continuations`` collects its follow-up jobs) and inserted through ``conn`` when the block
ends, in one statement, inside the caller's open transaction. Workers are woken by a
``NOTIFY`` that PostgreSQL delivers only when that transaction commits; if it rolls back, the
jobs never existed. Unique keys are deduplicated at the end of the block, under a lock held
until the caller's transaction ends, and the handles then name the jobs that exist.

If the block raises, nothing is inserted. ``perform_now`` inside the block is not part of
the transaction: it runs at once, recorded through the store as usual.

This needs the PostgreSQL store: the connection must reach the database the default store
(or ``store``) uses. Besides a ``psycopg.Connection`` it accepts Django's
``django.db.connection`` and a SQLAlchemy ``Connection`` (their underlying psycopg 3
connection is used).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from onward import stores
from onward.errors import ConfigurationError, OnwardError
from onward.job import Collector, collector
from onward.stores.base import Store


def _psycopg_connection(connection: Any) -> Any:
    """The psycopg 3 connection behind ``connection`` (Django, SQLAlchemy or psycopg itself)."""
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigurationError(
            "onward.transaction() needs the PostgreSQL driver; install it with: pip install 'onward[postgres]'"
        ) from exc
    candidate = connection
    if callable(getattr(candidate, "ensure_connection", None)):  # django.db.connection
        candidate.ensure_connection()
        candidate = candidate.connection
    inner = getattr(candidate, "connection", None)  # sqlalchemy.engine.Connection
    if inner is not None and hasattr(inner, "driver_connection"):
        candidate = inner.driver_connection
    candidate = getattr(candidate, "driver_connection", candidate)
    if isinstance(candidate, psycopg.Connection):
        return candidate
    if isinstance(candidate, psycopg.AsyncConnection):
        raise TypeError("onward.transaction() takes a synchronous psycopg.Connection, not an AsyncConnection")
    raise TypeError(
        f"onward.transaction() takes a psycopg (version 3) connection, Django's django.db.connection or a"
        f" SQLAlchemy Connection using psycopg; got {type(connection).__name__}"
    )


@contextmanager
def transaction(connection: Any, *, store: Store | None = None) -> Iterator[None]:
    """Enqueue the jobs of this block inside ``connection``'s current transaction."""
    conn = _psycopg_connection(connection)
    target = store or stores.default()
    from onward.stores import postgres  # the driver is known to be present from here on

    if not isinstance(target, postgres.PostgresStore):
        raise ConfigurationError(
            f"onward.transaction() needs the PostgreSQL store, but the store is {target.url}; connect with"
            " onward.connect('postgresql://...') (on SQLite, enqueue after your transaction commits)"
        )
    pending = Collector(target)
    token = collector.set(pending)
    try:
        yield
    finally:
        collector.reset(token)
    if pending.jobs:
        ids = _insert(conn, pending)
        for handle, job_id in zip(pending.handles, ids, strict=True):
            handle._id = job_id


def _insert(conn: Any, pending: Collector) -> list[str]:
    from psycopg import pq

    from onward.stores import postgres_sql

    status = conn.info.transaction_status
    if status == pq.TransactionStatus.INERROR:
        raise OnwardError("onward.transaction(): the connection's transaction has failed; no job was enqueued")
    if status == pq.TransactionStatus.IDLE and conn.autocommit:
        raise OnwardError(
            "onward.transaction(): no transaction is open on the connection (it is in autocommit mode), so the"
            " jobs would not depend on anything; open one first (with conn.transaction(): ..., or Django's"
            " transaction.atomic())"
        )
    ids: list[str] = postgres_sql.insert_jobs(conn, pending.jobs)
    return ids
