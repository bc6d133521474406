"""The pytest plugin (registered by entry point): the ``onward_store`` fixture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from onward import connecting
from onward.stores.base import Store


@pytest.fixture
def onward_store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite store in a temporary directory, the default store for the test;
    the previous default is restored afterwards."""
    with connecting.connected(f"sqlite:///{tmp_path / 'onward.sqlite3'}") as store:
        yield store
