"""Fixtures for the PostgreSQL-specific tests: fresh databases, with or without the schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import pg
from onward import stores
from onward.stores.base import Store


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a fresh database holding the current schema."""
    yield from pg.fresh_database(request)


@pytest.fixture
def empty_pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a fresh database without any Onward schema."""
    yield from pg.empty_database(request)


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    """A PostgreSQL store on a fresh database, the default store during the test."""
    with stores.connected(pg_url) as store:
        yield store
