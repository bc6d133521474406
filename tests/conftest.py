"""Shared fixtures: ``store`` runs a test once per backend (SQLite, PostgreSQL).

PostgreSQL tests skip with a message when no server is reachable, and fail instead when the
``CI`` environment variable is set.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from onward import stores

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # test job modules (tests/jobs*.py) importable by workers

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of a fresh, empty store of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'onward.sqlite3'}"
        return
    import pg  # tests/pg.py

    yield from pg.fresh_database(request)


@pytest.fixture
def store(store_url: str) -> Iterator[stores.Store]:
    """A fresh store of each backend, the default store during the test."""
    with stores.connected(store_url) as store:
        yield store


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[stores.Store]:
    """A fresh SQLite store, the default during the test (SQLite-specific behaviour)."""
    with stores.connected(f"sqlite:///{tmp_path / 'onward.sqlite3'}") as store:
        yield store


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """Environment for worker subprocesses: tests/ and src/ importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent / "src"), env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(autouse=True)
def fresh_schedules() -> Iterator[None]:
    """No schedule declared in this process during the test (``onward.schedule``), and none
    left behind by it: a module that declares schedules when imported (the demo's jobs) does
    not make the workers of other tests run them."""
    from onward import schedules

    saved = dict(schedules._registry)
    schedules._registry.clear()
    yield
    schedules._registry.clear()
    schedules._registry.update(saved)
