"""Transactional enqueue through Django's and SQLAlchemy's connections (psycopg 3 underneath)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from jobs_pg import Noop

import onward
from onward.stores.base import JobFilter, Store


def _args(store: Store) -> list[Any]:
    return sorted(j.args[0] for j in store.list_jobs(JobFilter(limit=100)))


def test_sqlalchemy_session_connection(pg_store: Store, pg_url: str) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from sqlalchemy.orm import Session

    engine = sqlalchemy.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with Session(engine) as session, session.begin():
            session.execute(sqlalchemy.text("CREATE TABLE users (id int PRIMARY KEY)"))
            session.execute(sqlalchemy.text("INSERT INTO users VALUES (1)"))
            with onward.transaction(session.connection()):
                Noop.perform_later("committed")
        with Session(engine) as session, session.begin():
            raw = session.connection().connection.driver_connection
            with onward.transaction(raw):
                Noop.perform_later("rolled back")
            session.rollback()
    finally:
        engine.dispose()
    assert _args(pg_store) == ["committed"]


def test_django_connection_inside_atomic(pg_store: Store, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("django")
    # Django refuses database calls from a thread where an event loop runs; another test's
    # loop must not make this one depend on test order.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    import django
    from django.conf import settings

    parts = urlsplit(pg_url)
    database = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or 5432),
        "OPTIONS": {"options": parse_qs(parts.query).get("options", [""])[0]},  # the test's schema
    }
    if not settings.configured:
        settings.configure(DATABASES={"default": database}, USE_TZ=True)
        django.setup()
    from django.db import connection, transaction

    connection.close()
    connection.settings_dict.update(database)  # this test's fresh database

    def enqueue_then_fail() -> None:
        with transaction.atomic():
            with onward.transaction(connection):
                Noop.perform_later("rolled back")
            raise RuntimeError("the view failed")

    try:
        with transaction.atomic(), onward.transaction(connection):
            Noop.perform_later("committed")
        with pytest.raises(RuntimeError, match="the view failed"):
            enqueue_then_fail()
        outside = pytest.raises(onward.OnwardError, match="no transaction is open")  # autocommit, no atomic()
        with outside, onward.transaction(connection):
            Noop.perform_later("outside atomic")
    finally:
        connection.close()
    assert _args(pg_store) == ["committed"]
