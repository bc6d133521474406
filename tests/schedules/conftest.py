"""Each test starts with no schedule declared in this process, and leaves none behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from onward import schedules


@pytest.fixture(autouse=True)
def _no_schedules_declared() -> Iterator[None]:
    saved = dict(schedules._registry)
    schedules._registry.clear()
    yield
    schedules._registry.clear()
    schedules._registry.update(saved)
