"""Transactional enqueue: jobs that exist if and only if the caller's transaction commits.

::

    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("INSERT INTO users ...")
        with onward.transaction(conn):
            SendWelcomeEmail.perform_later(user_id)

Inside the block, ``perform_later`` and ``perform_all_later`` calls (and ``onward.batch()``
blocks, with their members) are collected (the same
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

from onward import collecting, connecting, events
from onward.stores.base import Store

__all__ = ["transaction"]


@contextmanager
def transaction(connection: Any, *, store: Store | None = None) -> Iterator[None]:
    """Enqueue the jobs of this block inside ``connection``'s current transaction."""
    target = store or connecting.default()
    insert = target.join_transaction(connection)
    with collecting.collecting(target) as pending:
        yield
    if pending.jobs or pending.batches:
        ids = insert(pending.jobs, pending.batches)
        pending.resolve(ids)
        events.enqueued(pending.jobs + pending.members, ids)  # inserted; they exist once the caller commits
